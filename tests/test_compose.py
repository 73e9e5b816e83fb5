"""docker-compose.yml and the Dockerfile only run what exists in this project (no Docker engine
here, so the file is checked statically), and `check --deploy` passes under production settings."""

from __future__ import annotations

import ast
import base64
import importlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands
from django.urls import resolve

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = [name for name, svc in COMPOSE["services"].items() if svc.get("build")]


def settings_env_vars() -> set[str]:
    """Names of every environment variable config/settings.py reads (through config.env)."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id.startswith("env_") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    return names


def argv(command) -> list[str]:
    return command if isinstance(command, list) else shlex.split(command)


def check_command(args: list[str]) -> None:
    exe = args[0]
    assert shutil.which(exe, path=str(Path(sys.executable).parent)) or shutil.which(exe), (
        f"{exe} not installed"
    )
    if exe == "python":
        assert args[1] == "manage.py" and (ROOT / "manage.py").exists()
        assert args[2] in get_commands(), f"manage.py {args[2]} does not exist"
    elif exe == "gunicorn":
        module, _, attr = args[1].partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
        # The ASGI application under uvicorn workers: the agents' long poll is the same as in
        # `make run` and in the tests (uvicorn), never a thread per waiting agent.
        assert module == "config.asgi", args
        worker = args[args.index("-k") + 1]
        worker_module, _, worker_class = worker.rpartition(".")
        assert worker == "uvicorn_worker.UvicornWorker" and getattr(
            importlib.import_module(worker_module), worker_class
        )
    elif exe == "celery":
        module, _, attr = args[args.index("-A") + 1].partition(":")
        from celery import Celery

        assert isinstance(getattr(importlib.import_module(module), attr), Celery)
        assert args[args.index("-A") + 2] in {"worker", "beat", "inspect"}
    else:
        raise AssertionError(f"unexpected command {args}")


def test_services_and_volumes():
    assert {"db", "redis", "web", "worker", "beat"} <= set(COMPOSE["services"])
    for name in ("db", "redis", "web", "worker"):
        assert "healthcheck" in COMPOSE["services"][name], name
    assert {"pg-data", "redis-data", "cardap-data"} <= set(COMPOSE["volumes"])
    assert COMPOSE["services"]["db"]["volumes"] == ["pg-data:/var/lib/postgresql/data"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_command_exists(service):
    svc = COMPOSE["services"][service]
    check_command(argv(svc["command"]))
    health = svc.get("healthcheck", {}).get("test")
    if health and health[0] == "CMD-SHELL":
        check_command(shlex.split(health[1].replace("$$", "$")))


def test_dockerfile_default_command_exists():
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    check_command(yaml.safe_load(cmd))


def test_web_healthcheck_url_is_the_health_view():
    test = COMPOSE["services"]["web"]["healthcheck"]["test"]
    url = urlparse(next(a for a in test if a.startswith("http")))
    assert resolve(url.path).func.__name__ == "healthz"
    assert url.port == 8000 and "0.0.0.0:8000" in COMPOSE["services"]["web"]["command"]
    # Reachable without sign-in and without the HTTPS redirect, from inside the container.
    assert any(url.path.startswith(p) for p in settings.LOGIN_EXEMPT_PREFIXES)
    assert any(re.match(p, url.path.lstrip("/")) for p in settings.SECURE_REDIRECT_EXEMPT)
    assert "localhost" in COMPOSE["services"]["web"]["environment"]["ALLOWED_HOSTS"]


def test_environment_is_what_settings_read():
    known = settings_env_vars()
    for service in APP_SERVICES:
        for name in COMPOSE["services"][service]["environment"]:
            assert name in known, f"{service} sets {name}, which settings.py never reads"


def test_app_services_use_postgres_and_redis_services():
    env = COMPOSE["services"]["web"]["environment"]
    assert (
        urlparse(env["DATABASE_URL"].replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "x")).hostname
        == "db"
    )
    assert urlparse(env["REDIS_URL"]).hostname == "redis"


def _ed25519_b64(public: bool) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw() if public else key.private_bytes_raw()
    return base64.b64encode(raw).decode()


def test_check_deploy_passes_under_production_settings(tmp_path):
    env = {
        **os.environ,
        "CARDAP_DEMO": "0",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KEYSTORE_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "REVOCATION_FEED_PUBKEY": _ed25519_b64(public=True),
        "REVOCATION_SIGNING_KEY": _ed25519_b64(public=False),
        "ALLOWED_HOSTS": "cardap.example.jp",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "CARDAP_VAR_DIR": str(tmp_path),
    }
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)  # a production environment has none of the test process's extras
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "no issues" in done.stdout


def test_production_refuses_a_short_secret_key(tmp_path):
    env = {
        **os.environ,
        "CARDAP_DEMO": "0",
        "DEBUG": "0",
        "SECRET_KEY": "short",
        "KEYSTORE_KEY": "x",
        "CARDAP_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "SECRET_KEY must be at least 50 characters" in done.stderr


def test_make_run_serves_with_uvicorn():
    """The demo serves with the production ASGI server (tests/pcsc/test_make_run.py runs it)."""
    script = (ROOT / "scripts" / "run-demo.sh").read_text()
    code = [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert any(line.lstrip().startswith('"$BIN/python" -m uvicorn config.asgi:application') for line in code)
    assert "runserver" not in script


def test_production_refuses_the_published_demo_keystore_key(tmp_path):
    from operators.keys import DEMO_KEYSTORE_KEY

    env = {
        **os.environ,
        "CARDAP_DEMO": "0",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # The same key in standard base64: still the published one.
        "KEYSTORE_KEY": base64.b64encode(base64.urlsafe_b64decode(DEMO_KEYSTORE_KEY)).decode(),
        "CARDAP_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "KEYSTORE_KEY is the published demo key" in done.stderr


def test_web_workers_pool_their_database_connections():
    """The ASGI web workers keep a connection pool; the Celery processes (forked) do not, and the
    settings' exclusive DB_CONN_MAX_AGE is not set beside it."""
    web = COMPOSE["services"]["web"]["environment"]
    assert web["DATABASE_URL"] == COMPOSE["services"]["worker"]["environment"]["DATABASE_URL"]
    assert re.fullmatch(r"\$\{DB_POOL_SIZE:-([1-9][0-9]?)\}", web["DB_POOL_SIZE"])
    assert "DB_CONN_MAX_AGE" not in web
    for name in ("worker", "beat"):
        assert "DB_POOL_SIZE" not in COMPOSE["services"][name]["environment"]
