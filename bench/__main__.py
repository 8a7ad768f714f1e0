"""Benchmarks: each prints its cost next to a baseline measured in the same process, as a ratio.

    python -m bench            # all
    python -m bench events     # one

Ratios, not absolute times, are what to compare between machines and runs.
"""

from __future__ import annotations

import os
import sys
import tempfile


def main(argv: list[str]) -> None:
    scratch = tempfile.mkdtemp(prefix="kfbench-")
    os.environ.setdefault("KFPLATFORM_VAR_DIR", scratch)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_app.settings")
    os.environ.setdefault("WECHAT_API_BASE", "http://127.0.0.1:9")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench import events, tokens

    suites = {"events": events.run, "tokens": tokens.run}
    for name in argv or list(suites):
        suites[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
