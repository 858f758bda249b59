"""Benchmark: API requests per second for creating and listing subscriptions,
against a live `tulpar api` (uvicorn, one process) on loopback.

    .venv/bin/python benchmarks/api.py                       # SQLite, 1000 creates, 1000 lists, 8 clients
    .venv/bin/python benchmarks/api.py --creates 300 --lists 300 --clients 4
    .venv/bin/python benchmarks/api.py --database-url postgresql://USER@HOST/DB

It makes a temporary directory with a migrated SQLite database (or a fresh
schema in the PostgreSQL of --database-url), starts a private redis-server
(the rate limiter counts every request there, as in production; the limit is
set out of reach so that it counts but never refuses), and runs `python -m
services api` on a free port. A tenant and a webhook channel are created;
then --clients threads, each with its own keep-alive HTTP connection, send

  create: POST /v1/subscriptions  (a news query, one channel; every one parsed,
          checked and written with its change-log row in one transaction)
  list:   GET /v1/subscriptions?limit=50  (one page, with each one's channels)

and the figures printed are requests/s over the wall time of each phase and
the median and 95th percentile latency. Every answer must be 201 / 200.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.local.ports import free_port  # noqa: E402
from services.local.redis_process import RedisProcess  # noqa: E402
from services.store import schema  # noqa: E402

ADMIN = "bench-admin-" + uuid.uuid4().hex


def run_phase(name: str, clients: int, total: int, url: str, key: str, request) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                ok, detail = request(http, i)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if not ok:
                        errors.append(detail)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{name}: {len(errors)} failed requests, e.g. {errors[0]}")
    latencies.sort()
    return {"name": name, "requests": total, "wall": wall, "rps": total / wall,
            "p50": statistics.median(latencies) * 1000, "p95": latencies[int(len(latencies) * 0.95) - 1] * 1000}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--creates", type=int, default=1000)
    p.add_argument("--lists", type=int, default=1000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--database-url", default="")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp) / "redis") as redis_server:
        tmp = Path(tmp)
        db_url = args.database_url or f"sqlite:///{tmp / 'tulpar.db'}"
        if args.database_url:
            import sqlalchemy as sa

            base = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
            name = "bench_" + uuid.uuid4().hex[:10]
            engine = sa.create_engine(base)
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            db_url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"
        schema.upgrade(db_url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TULPAR_")}
        env |= {"DATABASE_URL": db_url, "REDIS_URL": redis_server.url, "TULPAR_ADMIN_TOKEN": ADMIN,
                "TULPAR_API_RATE_LIMIT": str(10**9), "TULPAR_VAR_DIR": str(tmp / "var")}
        log = open(tmp / "api.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "services", "api", "--port", str(port)], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("tulpar api did not start: " + (tmp / "api.log").read_text())
                time.sleep(0.1)
            key = httpx.post(url + "/v1/tenants", json={"name": "bench"},
                             headers={"Authorization": f"Bearer {ADMIN}"}).json()["api_key"]
            channel = httpx.post(url + "/v1/channels", json={"type": "webhook", "url": "https://hooks.example.com/b"},
                                 headers={"Authorization": f"Bearer {key}"}).json()["id"]

            def create(http, i):
                r = http.post("/v1/subscriptions", json={"name": f"s{i}", "query": f'tariff* AND "word {i}"',
                                                         "channels": [channel]})
                return r.status_code == 201, f"{r.status_code} {r.text[:200]}"

            def list_(http, i):
                r = http.get("/v1/subscriptions", params={"limit": 50})
                return r.status_code == 200 and len(r.json()["items"]) == 50, f"{r.status_code} {r.text[:200]}"

            print(f"tulpar api on {url}, {'PostgreSQL' if args.database_url else 'SQLite'}, "
                  f"{args.clients} clients, {os.cpu_count()} CPUs")
            for phase in (run_phase("create subscription", args.clients, args.creates, url, key, create),
                          run_phase("list subscriptions (page of 50)", args.clients, args.lists, url, key, list_)):
                print(f"  {phase['name']:<32} {phase['requests']:>6} requests in {phase['wall']:6.2f} s  "
                      f"{phase['rps']:7.1f} req/s   p50 {phase['p50']:6.1f} ms  p95 {phase['p95']:6.1f} ms")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
