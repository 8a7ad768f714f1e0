"""The figures the proof suites measured, gathered into the table `make reliability` prints.

Each suite records what it counted (`record("fault suite", requests=1000, ...)`); the conftest
prints them at the end of the run and writes them to var/reliability.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FULL = os.environ.get("RELIABILITY_FULL", "").lower() in ("1", "true", "yes")
IN_CI = os.environ.get("CI", "").lower() == "true"

FIGURES: dict[str, dict[str, Any]] = {}


def size(full: Any, reduced: Any) -> Any:
    return full if FULL else reduced


def record(suite: str, **figures: Any) -> None:
    FIGURES.setdefault(suite, {}).update(figures)


def table() -> str:
    rows = [(suite, name, value) for suite, figures in FIGURES.items() for name, value in figures.items()]
    if not rows:
        return ""
    width_suite = max(len("suite"), *(len(r[0]) for r in rows))
    width_name = max(len("figure"), *(len(r[1]) for r in rows))
    lines = [
        f"| {'suite'.ljust(width_suite)} | {'figure'.ljust(width_name)} | value |",
        f"|{'-' * (width_suite + 2)}|{'-' * (width_name + 2)}|-------|",
    ]
    for suite, name, value in rows:
        lines.append(f"| {suite.ljust(width_suite)} | {name.ljust(width_name)} | {value} |")
    return "\n".join(lines)


def save(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"full": FULL, "figures": FIGURES}, indent=2, default=str))
