"""The sandbox as the demo and the e2e tests run it: a separate process, configured by flags and env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from sandbox import cli, seed
from sandbox.management.commands.wechat_sandbox import settings_fallbacks

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the sandbox is ready (or has died)
    if not line.startswith("sandbox listening on http://127.0.0.1:"):
        process.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {process.communicate()[1]}")
    return process, line.split(" on ", 1)[1].strip()


def test_runs_as_a_process_on_a_free_port_and_stops_on_sigterm() -> None:
    process, url = _start("--quiet")
    try:
        session = requests.Session()
        session.trust_env = False
        assert session.get(url + "/sandbox/health", timeout=5).json()["ok"] is True
        accounts = session.get(url + "/sandbox/accounts", timeout=5).json()["accounts"]
        assert seed.LOTUS_TEA in {a["appid"] for a in accounts}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_environment_configures_the_component_and_seeding() -> None:
    env = {"WECHAT_COMPONENT_APPID": "wx00000000000000aa", "SANDBOX_SEED": "false"}
    process, url = _start("--quiet", env=env)
    try:
        session = requests.Session()
        session.trust_env = False
        assert session.get(url + "/sandbox/health", timeout=5).json()["component_appid"] == "wx00000000000000aa"
        assert session.get(url + "/sandbox/accounts", timeout=5).json()["accounts"] == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_flags_win_over_the_environment() -> None:
    options = {"component_appid": "wx1111111111111111", "seed": True, "port": None}
    environ = {"WECHAT_COMPONENT_APPID": "wx2222222222222222", "SANDBOX_SEED": "0", "SANDBOX_TICKET_INTERVAL": "5"}
    config = cli.config_from_options(options, environ=environ)
    assert config.component_appid == "wx1111111111111111"
    assert config.seed is True
    assert config.ticket_interval == 5.0
    assert config.port == cli.DEFAULT_PORT
    assert config.host == "127.0.0.1"


@pytest.mark.parametrize(
    "options",
    [
        {"push_url": "http://203.0.113.7/wechat/component/events/"},
        {"push_url": "ftp://127.0.0.1/x"},
        {"component_aes_key": "too-short"},
        {"ticket_interval": 0},
    ],
)
def test_bad_configuration_stops_start_up(options: dict) -> None:
    with pytest.raises(SystemExit):
        cli.config_from_options(options, environ={})


def test_loopback_push_urls_are_accepted() -> None:
    for url in ("http://127.0.0.1:8000/wechat/component/events/", "http://localhost:8000/x", "http://[::1]:8000/x"):
        assert cli.config_from_options({"push_url": url}, environ={}).push_url == url


def test_management_command_takes_the_platforms_credentials_from_settings() -> None:
    settings = SimpleNamespace(
        WECHAT_COMPONENT_APPID="wx3333333333333333",
        WECHAT_COMPONENT_APPSECRET="secret",
        WECHAT_COMPONENT_TOKEN="token",
        WECHAT_COMPONENT_AES_KEY="A" * 43,
    )
    options = {"platform_url": "http://127.0.0.1:8000/", "port": 9001}
    config = cli.config_from_options(options, fallbacks=settings_fallbacks(options, settings), environ={})
    assert (config.component_appid, config.component_appsecret, config.component_token) == (
        "wx3333333333333333",
        "secret",
        "token",
    )
    assert config.component_aes_key == "A" * 43
    assert config.push_url == "http://127.0.0.1:8000/wechat/component/events/"
    assert config.port == 9001
