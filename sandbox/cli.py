"""Command-line configuration shared by `python -m sandbox` and `manage.py wechat_sandbox`.

Each value comes from its flag, else from the fallbacks the caller gives (Django settings for the
management command), else from the environment, else from the demo default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .app import Sandbox, SandboxConfig

DEFAULT_PORT = 8900
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")

# option name -> environment variable
ENVIRONMENT = {
    "host": "SANDBOX_HOST",
    "port": "SANDBOX_PORT",
    "component_appid": "WECHAT_COMPONENT_APPID",
    "component_appsecret": "WECHAT_COMPONENT_APPSECRET",
    "component_token": "WECHAT_COMPONENT_TOKEN",
    "component_aes_key": "WECHAT_COMPONENT_AES_KEY",
    "push_url": "SANDBOX_PUSH_URL",
    "ticket_interval": "SANDBOX_TICKET_INTERVAL",
    "first_push_delay": "SANDBOX_FIRST_PUSH_DELAY",
    "token_ttl": "SANDBOX_TOKEN_TTL",
    "seed": "SANDBOX_SEED",
    "authorization_domain": "SANDBOX_AUTHORIZATION_DOMAIN",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; env SANDBOX_HOST)")
    parser.add_argument("--port", type=int, help=f"port; 0 picks a free one (default {DEFAULT_PORT}; env SANDBOX_PORT)")
    parser.add_argument("--component-appid", help="env WECHAT_COMPONENT_APPID (default: the demo component)")
    parser.add_argument("--component-appsecret", help="env WECHAT_COMPONENT_APPSECRET")
    parser.add_argument("--component-token", help="env WECHAT_COMPONENT_TOKEN")
    parser.add_argument("--component-aes-key", help="env WECHAT_COMPONENT_AES_KEY (43 characters)")
    parser.add_argument(
        "--push-url",
        help="the platform's authorization-event URL, e.g. http://127.0.0.1:8000/wechat/component/events/ "
        "(env SANDBOX_PUSH_URL; unset: no pushes)",
    )
    parser.add_argument("--ticket-interval", type=float, help="seconds between ticket pushes (default 600)")
    parser.add_argument(
        "--first-push-delay",
        type=float,
        help="seconds before the first ticket push (default 0; env SANDBOX_FIRST_PUSH_DELAY)",
    )
    parser.add_argument("--token-ttl", type=int, help="lifetime of component and authorizer tokens (default 7200)")
    parser.add_argument(
        "--seed", action=argparse.BooleanOptionalAction, default=None, help="create the demo accounts (default: yes)"
    )
    parser.add_argument("--quiet", action="store_true", default=None, help="do not log each request to stderr")
    parser.add_argument("--push-retry-delay", type=float, help="seconds between push retries (default 1)")
    parser.add_argument(
        "--authorization-domain",
        help="the platform's registered authorization domain: the authorization page refuses any other "
        "Referer (env SANDBOX_AUTHORIZATION_DOMAIN; default: the push URL's host:port)",
    )
    # How strictly WeChat is imitated; each default is WeChat's (docs/sandbox.md).
    parser.add_argument(
        "--rotate-refresh-tokens",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="api_authorizer_token answers a new refresh token; the old one works 300 s more (default: yes)",
    )
    parser.add_argument(
        "--redirect-query",
        choices=("escape", "drop", "keep"),
        help="what happens to a redirect_uri's query parameters after the first: &amp;-escaped (default), "
        "dropped, or kept intact (unlike WeChat)",
    )
    parser.add_argument(
        "--check-redirect-domain",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse a redirect_uri off the registered authorization domain (default: yes)",
    )
    parser.add_argument(
        "--minute-limit", type=int, help="calls per kf API per merchant per wall-clock minute before 45011"
    )
    parser.add_argument(
        "--allow-nonlocal-push",
        action="store_true",
        default=False,
        help="allow a push URL that is not on loopback (refused by default)",
    )


def _truthy(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true/false/1/0, got {value!r}")


def config_from_options(
    options: Mapping[str, Any],
    *,
    fallbacks: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> SandboxConfig:
    fallbacks = fallbacks or {}
    defaults = SandboxConfig()
    values: dict[str, Any] = {}
    for name in (
        "host",
        "port",
        "component_appid",
        "component_appsecret",
        "component_token",
        "component_aes_key",
        "push_url",
        "ticket_interval",
        "first_push_delay",
        "token_ttl",
        "seed",
        "authorization_domain",
    ):
        value = options.get(name)
        if value is None:
            value = fallbacks.get(name) or None
        if value is None and environ.get(ENVIRONMENT[name], "").strip():
            value = environ[ENVIRONMENT[name]].strip()
        if value is None:
            continue
        try:
            if name in ("port", "token_ttl"):
                value = int(value)
            elif name in ("ticket_interval", "first_push_delay"):
                value = float(value)
            elif name == "seed" and isinstance(value, str):
                value = _truthy(ENVIRONMENT[name], value)
        except ValueError:
            raise SystemExit(f"{name} must be a number, got {value!r}") from None
        values[name] = value
    values.setdefault("port", DEFAULT_PORT)
    for name in (
        "quiet",
        "push_retry_delay",
        "rotate_refresh_tokens",
        "redirect_query",
        "check_redirect_domain",
        "minute_limit",
    ):
        if options.get(name) is not None:
            values[name] = options[name]
    config = SandboxConfig(**{**defaults.__dict__, **values})
    _validate(config, allow_nonlocal_push=bool(options.get("allow_nonlocal_push")))
    return config


def _validate(config: SandboxConfig, *, allow_nonlocal_push: bool) -> None:
    if not _AES_KEY_RE.fullmatch(config.component_aes_key):
        raise SystemExit("the component EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    if config.ticket_interval <= 0 or config.token_ttl <= 0:
        raise SystemExit("ticket interval and token TTL must be positive")
    if config.first_push_delay < 0:
        raise SystemExit("the first push delay must not be negative")
    if config.minute_limit < 0:
        raise SystemExit("the minute limit must not be negative")
    if config.push_url:
        parts = urlsplit(config.push_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"push URL must be an http(s) URL, got {config.push_url!r}")
        if not allow_nonlocal_push and not _is_loopback(parts.hostname):
            raise SystemExit(f"push URL {config.push_url!r} is not on loopback (use --allow-nonlocal-push)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(config: SandboxConfig) -> None:
    sandbox = Sandbox(config)
    url = sandbox.bind()
    server = sandbox.server
    assert server is not None, "bind() sets the server"
    if not config.quiet:
        accounts = ", ".join(f"{a['appid']} ({a['nick_name']})" for a in sandbox.state.account_summaries())
        sys.stderr.write(
            f"sandbox: component {config.component_appid}; pushes to {config.push_url or '(nowhere)'}"
            f" every {config.ticket_interval:g}s; accounts: {accounts or 'none'}\n"
        )
    print(f"sandbox listening on {url}", flush=True)

    def stop(signum: int, frame: object) -> None:
        # serve_forever() runs in this thread; shutdown() must be called from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if sandbox.ticket_loop is not None:
            sandbox.ticket_loop.stop()
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="A stateful WeChat simulator for the demo and the tests."
    )
    add_arguments(parser)
    run(config_from_options(vars(parser.parse_args(argv))))
