"""Operators' probes against the real web process: liveness, and readiness that checks DB and broker."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e


def test_healthz_answers_ok(stack: Stack) -> None:
    response = stack.web.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_the_broker(stack: Stack) -> None:
    response = stack.web.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
