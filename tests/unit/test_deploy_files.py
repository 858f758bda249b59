"""The files that start the service elsewhere: Procfile, docker-compose.yml,
the example config. `docker compose config` checks the compose file where a
docker with the compose plugin is installed; the structure is checked always."""
import shutil
import subprocess
from pathlib import Path

import yaml

from services import config
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


# (process, its queues, its pool, its concurrency variable, default): polls
# and deliveries in separate pools, the sweep beside the deliveries; polls in
# processes or (TULPAR_POLL_POOL=threads) threads of the one process that
# holds the subscriptions' index (workers/runtime.py), deliveries in
# processes (their time limits).
WORKERS = [("poll", "poll", "${TULPAR_POLL_POOL:-prefork}", "TULPAR_POLL_CONCURRENCY", "2"),
           ("deliver", "deliver,sweep", None, "TULPAR_DELIVER_CONCURRENCY", "4")]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_procfile_runs_a_poll_and_a_deliver_worker_beat_and_the_api():
    from services.delivery.queue import QUEUES

    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(lines) == {"poll", "deliver", "beat", "api"}
    consumed = set()
    for name, queues, pool, variable, default in WORKERS:
        argv = lines[name].split()
        assert argv[:4] == ["celery", "-A", "workers.app", "worker"]
        assert option(argv, "-Q") == queues
        assert (option(argv, "--pool") if "--pool" in argv else None) == pool
        assert option(argv, "--concurrency") == f"${{{variable}:-{default}}}"
        assert option(argv, "--hostname") == f"{name}@%h"  # two workers on one host
        consumed |= set(queues.split(","))
    assert consumed == set(QUEUES)  # every queue has a consumer
    # A poll pool process is replaced after so many polls, giving back the
    # pages it copied from the parent's index (docs/performance.md).
    assert option(lines["poll"].split(), "--max-tasks-per-child") == "${TULPAR_POLL_MAX_TASKS:-500}"
    assert "--max-tasks-per-child" not in lines["deliver"].split()
    assert "celery -A workers.app beat" in lines["beat"]
    # Reachable from outside its container or dyno, on the platform's port or 8000.
    assert lines["api"].split() == ["tulpar", "api", "--host", "0.0.0.0", "--port", "${PORT:-8000}"]


def test_procfile_and_compose_commands_are_tulpar_commands():
    """Each `tulpar ...` the deploy files run is one this tulpar has."""
    from services.cli import build_parser

    known = set(build_parser()._subparsers._group_actions[0].choices)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = [svc["command"] for svc in compose["services"].values()
                if isinstance(svc.get("command"), list) and svc["command"][0] == "tulpar"]
    commands += [line.split(":", 1)[1].split() for line in (ROOT / "Procfile").read_text().splitlines()
                 if line.split(":", 1)[1].split()[0] == "tulpar"]
    assert {c[1] for c in commands} == {"db", "api"}
    assert {c[1] for c in commands} <= known


def test_compose_has_the_stack_and_redis_keeps_an_aof():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "poll-worker", "deliver-worker", "beat", "mailpit"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    for name in ("poll-worker", "deliver-worker", "beat", "api"):
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["TULPAR_SMTP_HOST"] == "mailpit"
    for name, queues, pool, variable, default in WORKERS:
        argv = services[f"{name}-worker"]["command"]
        assert argv[:4] == ["celery", "-A", "workers.app", "worker"]
        assert option(argv, "-Q") == queues
        assert (option(argv, "--pool") if "--pool" in argv else None) == pool
        assert option(argv, "--concurrency") == f"${{{variable}:-{default}}}"
        assert services[f"{name}-worker"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert option(services["poll-worker"]["command"], "--max-tasks-per-child") == "${TULPAR_POLL_MAX_TASKS:-500}"
    example = services["poll-worker"]["environment"]["TULPAR_CONFIG"].split(":-")[-1].rstrip("}")
    assert (ROOT / "config" / example).is_file()


def test_compose_api_serves_on_8000_after_the_migration():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    api = services["api"]
    assert api["command"] == ["tulpar", "api", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000:8000" in api["ports"]
    # Like worker and beat: only once the one-shot migrate service succeeded.
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert api["depends_on"] == services["poll-worker"]["depends_on"] == services["deliver-worker"]["depends_on"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    env = api["environment"]
    # The operator sets the admin token; empty by default (no one creates tenants).
    assert env["TULPAR_ADMIN_TOKEN"] == "${TULPAR_ADMIN_TOKEN:-}"
    assert env["TULPAR_PUBLIC_URL"].startswith("${TULPAR_PUBLIC_URL:-http")


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):  # `make test` installs it where docker is present
        return ["docker-compose"]
    return None


def test_compose_config_validates_with_docker_when_present():
    command = compose_command()
    if command is None:
        assert not shutil.which("docker"), "docker is here but no compose: run `make test` (it installs one)"
        return  # no docker on this machine: the structural test above is the check
    result = subprocess.run(command + ["-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_example_production_config_loads():
    cfg = config.load(ROOT / "config" / "production.example.yaml", Settings())
    assert cfg.sources and cfg.subscriptions
    assert not cfg.allow_private_targets


def test_readme_settings_table_names_every_setting():
    """services/settings.py promises every field is in the README's table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Settings (environment)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    missing = []
    for name, field in Settings.model_fields.items():
        env = field.validation_alias if isinstance(field.validation_alias, str) else f"TULPAR_{name.upper()}"
        if not any(f"`{env}`" in row.split("|")[1] for row in rows):
            missing.append(env)
    assert missing == []
