"""Per-client throttle of /wechat/authorize* (each page view spends a pre-auth code at WeChat).

A fixed window per client address in the shared cache (Redis in production, a file cache in the
demo), so it holds across processes. The client is the peer, or behind one of TRUSTED_PROXIES the
address it forwarded (platform_app/client_ip.py): each merchant's browser is counted alone.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from platform_app.client_ip import client_address

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "30/min" → (30, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


def hit(request: HttpRequest) -> int | None:
    """Count this request; None when allowed, else the seconds until the window ends."""
    limit, period = parse_rate(settings.WECHAT_AUTHORIZE_RATE_LIMIT)
    window = int(time.time()) // period
    key = f"authorize-throttle:{client_address(request)}:{window}"
    cache.add(key, 0, timeout=period + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=period + 1)
        count = 1
    if count <= limit:
        return None
    return max(1, (window + 1) * period - int(time.time()))
