"""Safe by default: production unless told otherwise, a clean `check --deploy`, no secret in the
image, transport settings from the environment, a compose file without hard-coded credentials."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SECRET_FILES = ("django_secret_key", "field_encryption_keys")


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "FIELD_", "WECHAT_", "DATABASE_", "PUBLIC_", "REDIS_", "CELERY_", "KFPLATFORM_")
        )
    }
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": "platform_app.settings",
        "KFPLATFORM_VAR_DIR": str(tmp_path),
        **overrides,
    }


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Production-like values, made up for this run (what .ci/run passes to `check --deploy`)."""
    return _env(
        tmp_path,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="kf.example.com",
        PUBLIC_BASE_URL="https://kf.example.com",
        FIELD_ENCRYPTION_KEYS="k1:" + base64.b64encode(os.urandom(32)).decode(),
        WECHAT_COMPONENT_APPID="wx" + secrets.token_hex(8),
        WECHAT_COMPONENT_APPSECRET=secrets.token_hex(16),
        WECHAT_COMPONENT_TOKEN=secrets.token_hex(12),
        WECHAT_COMPONENT_AES_KEY="".join(secrets.choice("abcdefghijkABCDEFGHIJK0123456789") for _ in range(43)),
        **overrides,
    )


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _settings_value(env: dict[str, str], expression: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = _run([sys.executable, "-c", code], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_django_debug_the_service_is_production_and_refuses_to_start_without_secrets(tmp_path):
    result = _run([sys.executable, "-c", "import django; django.setup()"], _env(tmp_path))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false" in result.stderr
    assert not [name for name in SECRET_FILES if (tmp_path / name).exists()]  # nothing generated


def test_the_demo_conveniences_need_django_debug_explicitly(tmp_path):
    assert _settings_value(_env(tmp_path, DJANGO_DEBUG="true"), "settings.DEBUG") == "True"
    assert (tmp_path / "django_secret_key").exists()  # generated for the demo, and only for it


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_silenced_check_has_a_written_reason():
    text = (ROOT / "platform_app" / "settings.py").read_text()
    for check in re.findall(r'SILENCED_SYSTEM_CHECKS\.append\("([^"]+)"\)', text):
        line = text.index(f'SILENCED_SYSTEM_CHECKS.append("{check}")')
        comment = text[text.rindex(f"# {check}, silenced because", 0, line) : line]
        assert len(comment) > 120, f"{check} has no written reason"


def test_transport_security_comes_from_the_environment(tmp_path):
    defaults = production_env(tmp_path)
    assert _settings_value(defaults, "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS") == ("True 31536000")
    tuned = production_env(
        tmp_path,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="600",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        DJANGO_SECURE_HSTS_PRELOAD="true",
        DJANGO_BEHIND_TLS_PROXY="true",
    )
    expression = (
        "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "settings.SECURE_HSTS_PRELOAD, settings.SECURE_PROXY_SSL_HEADER"
    )
    assert _settings_value(tuned, expression) == "False 600 True True ('HTTP_X_FORWARDED_PROTO', 'https')"


def test_the_image_build_bakes_no_secret_into_a_layer(tmp_path):
    """Run the Dockerfile's collectstatic step as written (only its paths moved here)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    run = re.search(r"^RUN (.*?)(?<!\\)\n", dockerfile, flags=re.S | re.M)
    assert run is not None
    step = next(part for part in run.group(1).replace("\\\n", " ").split("&&") if "collectstatic" in part)
    assert "DJANGO_DEBUG=false" in step  # DJANGO_DEBUG=true would generate keys into /app/var
    step = step.replace("python ", f"{sys.executable} ")
    result = subprocess.run(
        ["bash", "-c", step], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "static").is_dir()
    assert not [name for name in SECRET_FILES if (tmp_path / name).exists()]
    for secret_word in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS"):
        assert not re.search(rf"^ENV .*{secret_word}", dockerfile, flags=re.M)


def test_compose_takes_credentials_from_env_uses_an_app_role_and_publishes_only_on_loopback():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres_env = services["postgres"]["environment"]
    # The superuser's password is a secret file only the postgres container sees; not in .env, which
    # every app container reads, and not in any app container's environment.
    assert "POSTGRES_PASSWORD" not in postgres_env
    assert postgres_env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert services["postgres"]["secrets"] == ["postgres_password"]
    assert compose["secrets"]["postgres_password"]["file"].startswith("./secrets/")
    assert "secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    app_env = compose["x-app"]["environment"]
    database_url = app_env["DATABASE_URL"]
    assert "${" in database_url and "kfplatform:kfplatform@" not in database_url
    app_user = re.match(r"postgres://([^:]+):", database_url)
    assert app_user is not None and app_user.group(1) != postgres_env["POSTGRES_USER"]  # not the superuser
    redis_command = " ".join(services["redis"]["command"])
    assert "--requirepass" in redis_command
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        assert app_env[name].startswith("redis://:${REDIS_PASSWORD")
    for port in services["web"]["ports"]:
        assert str(port).startswith("127.0.0.1:"), port
    text = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: kfplatform" not in text
    for name, service in services.items():
        if name in ("postgres", "redis"):
            continue
        assert service.get("env_file", compose["x-app"]["env_file"]) == ".env", name
        assert "POSTGRES_PASSWORD" not in {**compose["x-app"]["environment"], **service.get("environment", {})}
        assert "secrets" not in service, name
    assert not re.search(r"^#?\s*POSTGRES_PASSWORD=", (ROOT / ".env.example").read_text(), flags=re.M)
    init = ROOT / "deploy" / "postgres-init.sh"
    assert init.exists() and "NOSUPERUSER" in init.read_text()


@pytest.mark.parametrize("name", ["KFPLATFORM_DB_PASSWORD", "REDIS_PASSWORD"])
def test_env_example_names_the_compose_passwords(name):
    assert re.search(rf"^{name}=", (ROOT / ".env.example").read_text(), flags=re.M)


def test_production_refuses_the_private_webhook_url_flag_but_takes_explicit_private_networks(tmp_path):
    refused = _run(
        [sys.executable, "-c", "import django; django.setup()"],
        production_env(tmp_path, WEBHOOK_ALLOW_PRIVATE_URLS="true"),
    )
    assert refused.returncode != 0
    assert "WEBHOOK_ALLOW_PRIVATE_URLS is for the demo and the tests only" in refused.stderr
    networks = production_env(tmp_path, WEBHOOK_PRIVATE_NETWORKS="10.20.0.0/16,fd12::/64")
    assert _settings_value(networks, "[str(n) for n in settings.WEBHOOK_PRIVATE_NETWORKS]") == (
        "['10.20.0.0/16', 'fd12::/64']"
    )


def test_deletion_workers_and_the_webhook_worker_consume_separate_queues():
    """Deliveries have their own queue and process: a slow receiver never takes a deletion thread."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    def queues(name: str) -> str:
        command = services[name]["command"]
        return command[command.index("-Q") + 1]

    assert queues("worker") == "celery"
    assert queues("webhook-worker") == "webhooks"
    for name, service in services.items():
        command = service.get("command") or []
        if "worker" in command:
            assert "-Q" in command, f"{name} starts a Celery worker without -Q: it would consume every queue"
