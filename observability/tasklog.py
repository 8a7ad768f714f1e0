"""Task log context: every task's lines carry its task id (a batch's calls add their deletion id)."""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun

from observability import context

_tokens: dict[str, tuple[Any, Any]] = {}


def _on_prerun(task_id: str | None = None, **_: Any) -> None:
    _tokens[task_id or ""] = (context.request_id.set(task_id or ""), context.deletion_id.set(None))


def _on_postrun(task_id: str | None = None, **_: Any) -> None:
    tokens = _tokens.pop(task_id or "", None)
    if tokens is None:
        return
    context.deletion_id.reset(tokens[1])
    context.request_id.reset(tokens[0])
    context.merchant_appid.set("")
    context.platform.set("")


def connect() -> None:
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="observability-prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="observability-postrun")
