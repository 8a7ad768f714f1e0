"""Every WeChat-API call the sandbox received, and cheap counters over them."""

from __future__ import annotations

import itertools
import json
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import parse_qs

DEFAULT_CAPACITY = 200_000
_MAX_BODY_KEPT = 4000


class Call(NamedTuple):
    """One received call, kept raw (~0.4 KB) so 200k of them stay cheap; rendered when read."""

    seq: int
    at: float
    method: str
    path: str
    raw_query: str
    body: bytes
    authorizer_appid: str | None
    errcode: int | None
    http_status: int
    fault: str | None
    duration_ms: float

    def render(self) -> dict[str, Any]:
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(self.raw_query, keep_blank_values=True).items()}
        return {
            "seq": self.seq,
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "query": query,
            "body": _render_body(self.body),
            "authorizer_appid": self.authorizer_appid,
            "errcode": self.errcode,
            "http_status": self.http_status,
            "fault": self.fault,
            "duration_ms": self.duration_ms,
        }


def _render_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class CallLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._lock = threading.Lock()
        self._calls: deque[Call] = deque(maxlen=capacity)
        self._seq = 0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._by_path: Counter[str] = Counter()
        self._errcodes: dict[str, Counter[str]] = {}
        self._by_appid: dict[str, Counter[str]] = {}
        self._in_flight: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()

    def begin(self, appid: str | None) -> None:
        """Counts a call in flight, so tests can see how many ran at once (overall and per authorizer)."""
        with self._lock:
            for key in ("*", appid) if appid else ("*",):
                self._in_flight[key] += 1
                if self._in_flight[key] > self._peak[key]:
                    self._peak[key] = self._in_flight[key]

    def end(self, appid: str | None) -> None:
        with self._lock:
            for key in ("*", appid) if appid else ("*",):
                self._in_flight[key] -= 1

    def record(
        self,
        *,
        at: float,
        method: str,
        path: str,
        raw_query: str,
        body: bytes,
        authorizer_appid: str | None,
        errcode: int | None,
        http_status: int,
        fault: str | None,
        duration_ms: float,
    ) -> int:
        path = sys.intern(path)
        appid = authorizer_appid
        outcome: object = errcode
        if outcome is None:
            outcome = fault if fault is not None else f"http_{http_status}"
        with self._lock:
            self._seq += 1
            self._calls.append(
                Call(
                    self._seq,
                    at,
                    method,
                    path,
                    raw_query,
                    body[:_MAX_BODY_KEPT],
                    appid,
                    errcode,
                    http_status,
                    fault,
                    duration_ms,
                )
            )
            self._by_path[path] += 1
            self._errcodes.setdefault(path, Counter())[str(outcome)] += 1
            if appid:
                self._by_appid.setdefault(appid, Counter())[path] += 1
            return self._seq

    def since(self, seq: int = 0, path: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if not self._calls:
                return []
            first = self._calls[0].seq
            start = max(0, seq - first + 1)
            selected: Iterator[Call] = itertools.islice(self._calls, start, None)
            if path:
                selected = (c for c in selected if c.path == path)
            if limit:
                selected = itertools.islice(selected, limit)
            calls = list(selected)
        return [c.render() for c in calls]

    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._reset_counters()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._by_path.values()),
                "last_seq": self._seq,
                "by_path": dict(self._by_path),
                "outcomes": {path: dict(c) for path, c in self._errcodes.items()},
                "by_appid": {appid: dict(c) for appid, c in self._by_appid.items()},
                "in_flight": {k: v for k, v in self._in_flight.items() if v},
                "peak_concurrency": dict(self._peak),
            }
