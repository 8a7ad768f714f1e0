"""Reading a platform's secrets for the platform commands: never from argv, where ``ps`` shows them.

From the environment (PLATFORM_APPSECRET, PLATFORM_TOKEN, PLATFORM_AES_KEY) or, with ``--stdin``,
from lines ``NAME=value`` on standard input (the same names), e.g. from a file only root can read:
``python manage.py platform_add … --stdin < secrets.env``. A terminal is asked without echo.
"""

from __future__ import annotations

import getpass
import os
import sys

from django.core.management.base import CommandError

NAMES = {"appsecret": "PLATFORM_APPSECRET", "token": "PLATFORM_TOKEN", "aes_key": "PLATFORM_AES_KEY"}


def secrets_read(wanted: tuple[str, ...], *, from_stdin: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    if from_stdin:
        for number, line in enumerate(sys.stdin.read().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise CommandError(f"stdin line {number}: expected NAME=value")  # the line is not echoed
            for field, env_name in NAMES.items():
                if name.strip() == env_name:
                    values[field] = value.strip().strip("\"'")
    else:
        for field in wanted:
            value = os.environ.get(NAMES[field], "").strip()
            if value:
                values[field] = value
    missing = [field for field in wanted if not values.get(field)]
    if missing and not from_stdin and sys.stdin.isatty():
        for field in missing:
            values[field] = getpass.getpass(f"{NAMES[field]}: ").strip()
        missing = [field for field in wanted if not values.get(field)]
    if missing:
        names = ", ".join(NAMES[field] for field in missing)
        where = "standard input" if from_stdin else "the environment (or give --stdin)"
        raise CommandError(f"missing {names} in {where}")
    return {field: values[field] for field in wanted}
