"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here)."""

import re
import runpy

import yaml
from django.conf import settings
from django.core.management import get_commands

from core.config import BASE_DIR


def _compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_compose_runs_pgvector_0_8_redis_web_and_worker():
    services = _compose()["services"]
    assert {"db", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    tag = re.fullmatch(r"pgvector/pgvector:(\d+)\.(\d+)\.\d+-pg\d+", services["db"]["image"])
    assert tag and (int(tag[1]), int(tag[2])) >= (0, 8)
    for name in ("web", "worker", "migrate"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql://prodrag:")
        assert environment["DATABASE_URL"].endswith("@db:5432/prodrag")
        assert environment["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    for name in ("db", "redis", "web"):
        assert "healthcheck" in services[name]
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_replica_is_an_optional_streaming_standby_of_db():
    compose = _compose()
    services = compose["services"]
    replica = services["db-replica"]
    assert replica["profiles"] == ["replica"]
    assert replica["image"] == services["db"]["image"]
    script = replica["command"][-1]
    assert "pg_basebackup --host db" in script and "--write-recovery-conf" in script
    assert script.rstrip().endswith("exec postgres")
    assert replica["volumes"][0].split(":")[0] != services["db"]["volumes"][0].split(":")[0]
    assert replica["depends_on"]["db"]["condition"] == "service_healthy"
    access = services["db"]["configs"][0]
    assert access["target"].startswith("/docker-entrypoint-initdb.d/")
    assert "host replication prodrag" in compose["configs"][access["source"]]["content"]


def test_compose_commands_name_things_that_exist():
    services = _compose()["services"]
    assert services["worker"]["command"][:3] == ["celery", "--app", "prodrag"]
    assert services["beat"]["command"][3] == "beat"
    assert "replicas" not in services["beat"].get("deploy", {})
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    config_path = re.search(r'"--config", "([^"]+)"', dockerfile)[1]
    assert (BASE_DIR / config_path).is_file()


def test_dockerfile_is_multi_stage_non_root_with_cpu_torch_pinned_as_locked():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) == 2
    assert re.search(r"^USER prodrag$", dockerfile, re.MULTILINE)
    locked = (BASE_DIR / "requirements.lock").read_text().splitlines()
    torch = next(line for line in locked if line.startswith("torch=="))
    assert torch in dockerfile and "whl/cpu" in dockerfile
    assert not any(line.startswith(("torchvision", "nvidia-")) for line in locked)


def _seconds(duration: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()
    return int(number) * (60 if unit == "m" else 1)


def test_every_long_running_service_restarts_has_limits_and_the_app_has_probes():
    services = _compose()["services"]
    for name in ("db", "redis", "web", "worker", "beat"):
        assert services[name]["restart"] == "unless-stopped", name
        limits = services[name]["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[mg]", limits["memory"]), name
    web_probe = " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in web_probe
    assert services["worker"]["healthcheck"]["test"][2:] == ["manage.py", "worker_health"]
    assert "worker_health" in get_commands()


def test_shutdown_grace_covers_the_servers_own_drain_and_late_acknowledgement():
    gunicorn = runpy.run_path(str(BASE_DIR / "prodrag" / "gunicorn.conf.py"))
    services = _compose()["services"]
    assert _seconds(services["web"]["stop_grace_period"]) > gunicorn["graceful_timeout"]
    assert _seconds(services["worker"]["stop_grace_period"]) >= 60
    # What the grace period cannot cover: a killed worker's task is delivered again.
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
