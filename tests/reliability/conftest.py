"""The proof suites: sizes (reduced in `make test`, full with RELIABILITY_FULL=1) and the figures table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    text = figures.table()
    if not text:
        return
    size = "full size (make reliability)" if figures.FULL else "reduced size (make test)"
    terminalreporter.section(f"reliability figures, {size}")
    terminalreporter.write_line(text)
    figures.save(Path(__file__).resolve().parents[2] / "var" / "reliability.json")
