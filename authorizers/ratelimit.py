"""Outbound rate limits per merchant and WeChat API, held across every worker and machine.

A GCRA (the token bucket written as one timestamp): Redis keeps, per merchant and API, the time at
which the next call may go. ``reserve`` books ``count`` consecutive slots atomically (a Lua script,
timed by Redis's own clock so machines with skewed clocks share one schedule) and answers when the
first slot is, relative to now; the caller spaces its calls ``interval`` apart from there. So a
merchant limited to 20 calls/s gets 20 calls/s whether one worker or ten are draining its backlog.

Without Redis (the embedded mode: one worker, SQLite) the same schedule is kept in the process.

The limit for a merchant is the lowest of: its own ``rate_limit_per_second`` if set, else the global
``WECHAT_RATE_LIMIT_PER_SECOND`` (0: none); the pace WeChat reports for it (``quota_rate_limit``,
from openapi/quota/get, re-read daily: ``rate_limit_seed``); and ``learned_rate_limit``, lowered
each time WeChat says 45011, the per-minute limit (``rate_limit_slow``). A 45009 (daily count) says
nothing about pace and teaches nothing (docs/wechat.md §12).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.models import Authorizer
from wechat.errors import WeChatError
from wechat.results import ApiQuota

# Never learn below this: a merchant paced at 0 would never finish its backlog.
MIN_LEARNED_RATE = 0.5

_SCRIPT = """
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local after = tat + count * interval
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 60000)
return string.format('%.6f', tat - now)
"""


@dataclass(frozen=True, slots=True)
class Slots:
    """``count`` calls may go: the first ``delay`` seconds from now, then one every ``interval``."""

    delay: float
    interval: float

    def due(self, index: int, start: float) -> float:
        """Monotonic time at which call ``index`` may go, for a booking made at ``start``."""
        return start + self.delay + index * self.interval


def rate_limit_for(authorizer: Authorizer) -> float | None:
    """Calls per second allowed for this merchant on each kf API, or None for no limit."""
    configured = authorizer.rate_limit_per_second or settings.WECHAT_RATE_LIMIT_PER_SECOND or None
    limits = [float(x) for x in (configured, authorizer.quota_rate_limit, authorizer.learned_rate_limit) if x]
    return min(limits) if limits else None


def reserve(*, authorizer: Authorizer, api: str, count: int) -> Slots | None:
    """Book ``count`` calls of ``api`` for this merchant; None when it has no limit."""
    rate = rate_limit_for(authorizer)
    if rate is None or count <= 0:
        return None
    interval = 1.0 / rate
    # One schedule per authorization (its row): the same account's calls through another platform
    # keep their own pace.
    key = f"ratelimit:{authorizer.pk}:{api}"
    client = _redis()
    if client is None:
        return _LOCAL.reserve(key, interval, count)
    delay = float(client.eval(_SCRIPT, 1, _key(key), f"{interval:.9f}", count))
    return Slots(delay=max(0.0, delay), interval=interval)


def rate_limit_slow(*, authorizer: Authorizer, errcode: int) -> float:
    """WeChat said 45011 (per-minute limit): halve the pace this merchant is held to, and say so."""
    current = rate_limit_for(authorizer) or settings.WECHAT_RATE_LIMIT_AFTER_QUOTA
    learned = max(MIN_LEARNED_RATE, round(current / 2, 3))
    Authorizer.objects.filter(pk=authorizer.pk).update(learned_rate_limit=learned)
    authorizer.learned_rate_limit = learned
    audit_record(
        actor=Actor.system("rate limit"),
        action=AuditAction.AUTHORIZER_RATE_LIMIT_LEARNED,
        authorizer_appid=authorizer.appid,
        outcome="lowered",
        errcode=errcode,
        detail={"calls_per_second": learned, "was": current},
    )
    return learned


# How often openapi/quota/get is asked again for a merchant (docs/wechat.md §12).
QUOTA_RECHECK = timedelta(days=1)
DELETE_CGI_PATH = "/customservice/kfaccount/del"


def rate_limit_seed(*, authorizer: Authorizer, read: Callable[[str], ApiQuota]) -> bool:
    """Seed the merchant's pace from openapi/quota/get, at most once a day; True when it asked.

    ``read(cgi_path)`` makes the call with the merchant's token. Whatever WeChat answers is cached a
    day, a refusal too (the pace then stays as it was): the quota is advice, never a reason to fail.
    """
    now = timezone.now()
    if authorizer.quota_checked_at is not None and authorizer.quota_checked_at > now - QUOTA_RECHECK:
        return False
    claimed = (
        Authorizer.objects.filter(pk=authorizer.pk)
        .filter(Q(quota_checked_at__isnull=True) | Q(quota_checked_at__lte=now - QUOTA_RECHECK))
        .update(quota_checked_at=now)
    )
    authorizer.quota_checked_at = now
    if not claimed:
        return False  # another worker is asking
    try:
        quota = read(DELETE_CGI_PATH)
    except WeChatError as exc:
        audit_record(
            actor=Actor.system("rate limit"),
            action=AuditAction.AUTHORIZER_QUOTA_READ,
            authorizer_appid=authorizer.appid,
            outcome=exc.reason,
            errcode=exc.errcode,
            errmsg=exc.errmsg,
            rid=exc.rid,
        )
        return True
    pace = quota.pace()
    Authorizer.objects.filter(pk=authorizer.pk).update(quota_rate_limit=pace)
    authorizer.quota_rate_limit = pace
    audit_record(
        actor=Actor.system("rate limit"),
        action=AuditAction.AUTHORIZER_QUOTA_READ,
        authorizer_appid=authorizer.appid,
        outcome="ok",
        errcode=0,
        detail={"calls_per_second": pace, "daily_limit": quota.daily_limit, "remain": quota.remain},
    )
    return True


def authorizer_rate_limit_set(
    *, authorizer: Authorizer, calls_per_second: float | None, actor: Actor, forget_learned: bool = False
) -> Authorizer:
    """Set (or, with None, clear) a merchant's own limit; ``forget_learned`` drops what 45011 taught."""
    if calls_per_second is not None and not (math.isfinite(calls_per_second) and calls_per_second > 0):
        raise ValueError("a rate limit must be a positive number of calls per second")
    changes: dict[str, float | None] = {"rate_limit_per_second": calls_per_second}
    if forget_learned:
        changes["learned_rate_limit"] = None
    Authorizer.objects.filter(pk=authorizer.pk).update(**changes)
    audit_record(
        actor=actor,
        action=AuditAction.AUTHORIZER_RATE_LIMIT_SET,
        authorizer_appid=authorizer.appid,
        outcome="set" if calls_per_second is not None else "cleared",
        detail={"calls_per_second": calls_per_second, "forget_learned": forget_learned},
    )
    authorizer.refresh_from_db()
    return authorizer


# --- where the schedule lives --------------------------------------------------------------------


def _key(key: str) -> str:
    return f"{getattr(settings, 'CACHE_KEY_PREFIX', '') or 'kfplatform'}:{key}"


def _redis() -> Any:
    url = settings.REDIS_URL
    return _client(url) if url else None


@lru_cache(maxsize=2)
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class _LocalSchedule:
    """The same booking in one process, for the embedded mode."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def reserve(self, key: str, interval: float, count: int) -> Slots:
        with self._lock:
            now = time.monotonic()
            tat = max(now, self._next.get(key, 0.0))
            self._next[key] = tat + count * interval
        return Slots(delay=tat - now, interval=interval)


_LOCAL = _LocalSchedule()
