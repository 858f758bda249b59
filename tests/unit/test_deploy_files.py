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


def test_procfile_runs_worker_and_beat_from_the_celery_app():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(lines) == {"worker", "beat"}
    assert "celery -A workers.app worker" in lines["worker"]
    assert "celery -A workers.app beat" in lines["beat"]


def test_compose_has_the_stack_and_redis_keeps_an_aof():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "worker", "beat", "mailpit"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    for name in ("worker", "beat"):
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["TULPAR_SMTP_HOST"] == "mailpit"
    example = services["worker"]["environment"]["TULPAR_CONFIG"].split(":-")[-1].rstrip("}")
    assert (ROOT / "config" / example).is_file()


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
