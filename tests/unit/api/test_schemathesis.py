"""schemathesis (v4) against the live OpenAPI document of a real `tulpar api`
on a free port, with a tenant's key: no 5xx, every status, content type,
header and body as the document declares. Bounded: a fixed seed and a few
examples per operation (about 20-40 s)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.unit.api.conftest import ADMIN, bearer

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "use_after_free",
])


def schemathesis() -> list[str]:
    found = Path(sys.executable).with_name("schemathesis")
    return [str(found)] if found.exists() else [shutil.which("schemathesis") or "schemathesis"]


def test_the_live_api_keeps_its_openapi_document(live_api, broker, tmp_path):
    live = live_api(REDIS_URL=broker, TULPAR_API_RATE_LIMIT="1000000")
    key = httpx.post(live.url + "/v1/tenants", json={"name": "fuzz"}, headers=bearer(ADMIN)).json()["api_key"]
    hook = httpx.post(live.url + "/v1/channels", json={"type": "webhook", "url": "https://hooks.example.com/x"},
                      headers=bearer(key)).json()
    httpx.post(live.url + "/v1/subscriptions", json={"name": "seed", "query": "tariff", "channels": [hook["id"]]},
               headers=bearer(key)).raise_for_status()
    done = subprocess.run(
        [*schemathesis(), "run", f"{live.url}/openapi.json", "--header", f"Authorization: Bearer {key}",
         "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "12",
         "--seed", "20261127", "--workers", "2", "--request-timeout", "10",
         "--no-color", "--report-dir", str(tmp_path / "report")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "generated" in done.stdout and " 0 passed" not in done.stdout
    assert "Traceback" not in live.output()
