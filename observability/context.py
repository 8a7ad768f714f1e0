"""What the current request or task is about, for log lines: request id, merchant appid, deletion id,
and the platform (its component appid) when it is not the default one.

Context variables, so each thread (gunicorn's gthread workers, Celery's thread pool) and each
request sees only its own. This module imports nothing of the product: the domain apps may set
values here without depending on the rest of observability.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
merchant_appid: contextvars.ContextVar[str] = contextvars.ContextVar("merchant_appid", default="")
deletion_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("deletion_id", default=None)
# Empty for the default platform: a single-platform deployment's lines read as they always did.
platform: contextvars.ContextVar[str] = contextvars.ContextVar("platform", default="")


def start(*, request: str) -> None:
    """A new request or task in this thread: its id, and nothing left over from the previous one."""
    request_id.set(request)
    merchant_appid.set("")
    deletion_id.set(None)
    platform.set("")


def set_merchant(appid: str, component_appid: str = "") -> None:
    """The merchant (and, if not the default one, the platform of its authorization) being served."""
    merchant_appid.set(appid)
    platform.set(component_appid)


@contextmanager
def bound(
    *, request: str = "", appid: str = "", deletion: int | None = None, component_appid: str = ""
) -> Iterator[None]:
    """Values for the duration of a block; what was there before comes back after it."""
    tokens = (request_id.set(request), merchant_appid.set(appid), deletion_id.set(deletion))
    platform_token = platform.set(component_appid)
    try:
        yield
    finally:
        platform.reset(platform_token)
        deletion_id.reset(tokens[2])
        merchant_appid.reset(tokens[1])
        request_id.reset(tokens[0])


def snapshot() -> dict[str, object]:
    return {
        "request_id": request_id.get(),
        "merchant_appid": merchant_appid.get(),
        "deletion_id": deletion_id.get(),
        "platform": platform.get(),
    }
