"""Settings come from the environment and fail loudly, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from platform_app.env import env_bool, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "value,expected", [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)]
)
def test_booleans_read_in_any_case(value, expected):
    assert env_bool("X", not expected, environ={"X": value}) is expected


def test_a_malformed_boolean_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG"):
        env_bool("DJANGO_DEBUG", True, environ={"DJANGO_DEBUG": "maybe"})


def test_lists_are_comma_separated():
    assert env_list("H", [], environ={"H": "a.example, b.example,,"}) == ["a.example", "b.example"]


def test_integers_and_urls_are_checked():
    with pytest.raises(ImproperlyConfigured, match="N"):
        env_int("N", 1, environ={"N": "ten"})
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env_url("DATABASE_URL", None, schemes=("postgres",), environ={"DATABASE_URL": "mysql://x"})


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_", "WECHAT_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "platform_app.settings", **env},
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _start({"DJANGO_DEBUG": "false"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


WECHAT_PRODUCTION = {
    "WECHAT_COMPONENT_APPID": "wx1234567890abcdef",
    "WECHAT_COMPONENT_APPSECRET": "secret",
    "WECHAT_COMPONENT_TOKEN": "token",
    "WECHAT_COMPONENT_AES_KEY": "A" * 43,
    "PUBLIC_BASE_URL": "https://kf.example",
}


def _production(**overrides: str) -> dict[str, str]:
    import base64

    return {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "s" * 50,
        "DJANGO_ALLOWED_HOSTS": "kf.example",
        "FIELD_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        **WECHAT_PRODUCTION,
        **overrides,
    }


def test_production_refuses_to_start_without_public_base_url():
    env = _production()
    del env["PUBLIC_BASE_URL"]
    result = _start(env)
    assert result.returncode != 0
    assert "PUBLIC_BASE_URL must be set" in result.stderr


@pytest.mark.parametrize("bad", ["A" * 42, "A" * 44, "A" * 42 + "=", "not a key"])
def test_a_malformed_encoding_aes_key_stops_start_up_naming_the_variable(bad):
    for name in ("WECHAT_COMPONENT_AES_KEY", "WECHAT_COMPONENT_PREVIOUS_AES_KEYS"):
        result = _start(_production(**{name: bad}))
        assert result.returncode != 0, name
        assert f"ImproperlyConfigured: {name} must be an EncodingAESKey" in result.stderr


def test_production_refuses_to_start_without_encryption_keys():
    result = _start(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "x" * 50,
            "DJANGO_ALLOWED_HOSTS": "kf.example",
            **WECHAT_PRODUCTION,
        }
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_a_malformed_database_url_fails_at_start_naming_it():
    result = _start({"DJANGO_DEBUG": "true", "DATABASE_URL": "notaurl"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_production_starts_with_everything_set():
    import base64

    key = "k1:" + base64.b64encode(os.urandom(32)).decode()
    result = _start(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "s" * 50,
            "DJANGO_ALLOWED_HOSTS": "kf.example",
            "FIELD_ENCRYPTION_KEYS": key,
            **WECHAT_PRODUCTION,
        }
    )
    assert result.returncode == 0, result.stderr


def test_unknown_api_urls_answer_the_json_error_envelope(client):
    response = client.get("/api/v1/deletions/not-a-number/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such resource"}}
