"""Benchmarks: each prints its cost next to a baseline measured in the same invocation, as a ratio.

    python -m bench                      # all: events, tokens (in-process), service (real processes)
    python -m bench events tokens        # some
    python -m bench service --quick      # the service suite, small (options: python -m bench service -h)
    python -m bench scale [--quick]      # console pages and scheduled jobs at 100,000 merchants (-h: options)
    python -m bench scaleout             # the drain with 1, 2 and 4 worker processes at 100 ms (-h: options)

Ratios, not absolute times, are what to compare between machines and runs.
"""

from __future__ import annotations

import os
import sys
import tempfile

IN_PROCESS = ("events", "tokens")


def _in_process(names: list[str]) -> None:
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
    for name in names:
        suites[name]()


def main(argv: list[str]) -> None:
    if argv and argv[0] == "scale":
        from bench import scale

        scale.run(argv[1:])
        return
    if argv and argv[0] == "scaleout":
        from bench import scaleout

        scaleout.run(argv[1:])
        return
    if argv and argv[0] == "service":
        from bench import service

        service.run(argv[1:])
        return
    names = [a for a in argv if not a.startswith("-")] or [*IN_PROCESS, "service"]
    options = [a for a in argv if a.startswith("-")]
    unknown = set(names) - {*IN_PROCESS, "service"}
    if unknown:
        sys.exit(f"unknown suite(s): {', '.join(sorted(unknown))}")
    if "service" in names:
        # Real processes first, in a clean interpreter state (no in-process Django yet).
        from bench import service

        service.run(options)
    _in_process([n for n in names if n in IN_PROCESS])


if __name__ == "__main__":
    main(sys.argv[1:])
