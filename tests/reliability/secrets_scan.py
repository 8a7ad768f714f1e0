"""Secrets a run of the real stack produced, and where they must not appear.

Collected from what WeChat (the sandbox) saw — every access token in a query string, every refresh
token, verify ticket, authorization code and appsecret in a request body, every pushed ticket — and
from the session itself (API keys, the Django secret key, field-encryption keys, the push token and
AES key, the metrics token). Searched for in the product's process logs (web, workers, beat), in
every message published to the broker, and in a pg_dump of the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.harness import Merchant, Stack

_BODY_SECRETS = (
    "authorization_code",
    "authorizer_refresh_token",
    "component_verify_ticket",
    "component_appsecret",
    "component_secret",
)
_QUERY_SECRETS = ("access_token", "component_access_token")
_TICKET = re.compile(r"<ComponentVerifyTicket><!\[CDATA\[([^\]]+)\]\]>")
_AUTH_CODE = re.compile(r"<AuthorizationCode><!\[CDATA\[([^\]]+)\]\]>")
_BROKER_BODY = re.compile(r'body\\*"\s*:\s*\\*"([A-Za-z0-9+/=]{8,})')
# Long enough that finding one in a log is no coincidence.
_MIN_LEN = 12


def collect_run_secrets(stack: Stack, merchants: list[Merchant]) -> set[str]:
    found: set[str] = set()
    for call in stack.sandbox.calls():
        for name in _QUERY_SECRETS:
            value = call["query"].get(name)
            if isinstance(value, str):
                found.add(value)
        if isinstance(call["body"], dict):
            for name in _BODY_SECRETS:
                value = call["body"].get(name)
                if isinstance(value, str):
                    found.add(value)
    for push in stack.sandbox.pushes():
        for pattern in (_TICKET, _AUTH_CODE):
            found.update(pattern.findall(push.get("plaintext") or ""))
    for merchant in merchants:
        if merchant.key:
            found.add(merchant.key)
        code = merchant.authorization.get("auth_code")
        if code:
            found.add(code)
    env = stack.env
    for name in ("DJANGO_SECRET_KEY", "WECHAT_COMPONENT_APPSECRET", "WECHAT_COMPONENT_AES_KEY", "METRICS_TOKEN"):
        found.add(env[name])
    found.update(item.split(":", 1)[1] for item in env["FIELD_ENCRYPTION_KEYS"].split(","))
    return {s for s in found if len(s) >= _MIN_LEN}


@dataclass
class Leaks:
    found: list[str] = field(default_factory=list)
    log_lines: int = 0
    json_lines: int = 0
    non_json: list[str] = field(default_factory=list)
    dump_bytes: int = 0


def _decoded_broker(messages: list[str]) -> list[str]:
    out = list(messages)
    for message in messages:
        for chunk in _BROKER_BODY.findall(message):
            try:
                out.append(base64.b64decode(chunk).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                pass
    return out


def _product_logs(tmp: Path) -> list[Path]:
    return sorted(p for p in (tmp / "logs").glob("*.log") if not p.name.startswith("sandbox"))


def _is_json_log(line: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and {"ts", "level", "message", "request_id"} <= set(entry)


def pg_dump(stack: Stack) -> str:
    binary = shutil.which("pg_dump") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None)
    assert binary, "pg_dump is missing"
    result = subprocess.run(
        [str(binary), "--no-owner", "--dbname", stack.db.django_url.replace("postgres://", "postgresql://", 1)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def scan_run(stack: Stack, pg: Any, secrets: set[str], broker_messages: list[str], tmp: Path) -> Leaks:
    leaks = Leaks()
    for path in _product_logs(tmp):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            leaks.log_lines += 1
            stripped = line.strip()
            if stripped.startswith("{"):
                leaks.json_lines += 1
                if not _is_json_log(stripped):
                    leaks.non_json.append(f"{path.name}:{number}: {stripped[:200]}")
            for secret in secrets:
                if secret in line:
                    leaks.found.append(f"{path.name}:{number} holds a secret ({secret[:4]}…)")
    for message in _decoded_broker(broker_messages):
        for secret in secrets:
            if secret in message:
                leaks.found.append(f"a broker message holds a secret ({secret[:4]}…): {message[:120]}")
    dump = pg_dump(stack)
    leaks.dump_bytes = len(dump)
    for secret in secrets:
        if secret in dump:
            leaks.found.append(f"the database dump holds a secret ({secret[:4]}…)")
    return leaks
