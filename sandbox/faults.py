"""Injected failures and latency for WeChat-API calls.

A fault is queued for one path (optionally one authorizer) and consumed, in order, by the next
matching calls. Lookups are a dict read per call, so an empty fault book costs nothing.
"""

from __future__ import annotations

import copy
import random
import threading
from dataclasses import dataclass, field
from typing import Any

GARBAGE_KINDS = ("html", "truncated", "text", "empty")
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass
class Fault:
    path: str
    appid: str | None = None
    times: int = 1
    errcode: int | None = None
    http_status: int | None = None
    timeout: float | None = None  # seconds to hold the answer back
    garbage: str | None = None
    latency_ms: int = 0
    # Whether WeChat did the work before the answer went wrong. A timed-out or cut-off answer
    # usually means the call went through (the outcome the platform must treat as unknown);
    # an error code or a 5xx from the gateway means it did not.
    applied: bool = False

    @property
    def kind(self) -> str:
        if self.errcode is not None:
            return f"errcode:{self.errcode}"
        if self.http_status is not None:
            return f"http_status:{self.http_status}"
        if self.timeout is not None:
            return f"timeout:{self.timeout:g}s"
        if self.garbage is not None:
            return f"garbage:{self.garbage}"
        return "latency"

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "appid": self.appid,
            "times": self.times,
            "kind": self.kind,
            "latency_ms": self.latency_ms,
            "applied": self.applied,
        }


def fault_from_json(data: dict[str, Any]) -> Fault:
    path = data.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError("path must be a URL path such as /customservice/kfaccount/del")
    times = int(data.get("times", 1))
    if times < 1:
        raise ValueError("times must be at least 1")
    kinds = [k for k in ("errcode", "http_status", "timeout", "garbage") if data.get(k) not in (None, False)]
    if len(kinds) > 1:
        raise ValueError("give at most one of errcode, http_status, timeout, garbage")
    fault = Fault(path=path, appid=data.get("appid") or None, times=times, latency_ms=int(data.get("latency_ms", 0)))
    if fault.latency_ms < 0:
        raise ValueError("latency_ms must not be negative")
    kind = kinds[0] if kinds else None
    if kind == "errcode":
        fault.errcode = int(data["errcode"])
    elif kind == "http_status":
        fault.http_status = int(data["http_status"])
        if not 400 <= fault.http_status <= 599:
            raise ValueError("http_status must be a 4xx or 5xx status")
    elif kind == "timeout":
        seconds = data.get("seconds", DEFAULT_TIMEOUT_SECONDS)
        fault.timeout = float(seconds)
        fault.applied = True
    elif kind == "garbage":
        if data["garbage"] not in GARBAGE_KINDS:
            raise ValueError(f"garbage must be one of {', '.join(GARBAGE_KINDS)}")
        fault.garbage = data["garbage"]
        fault.applied = fault.garbage == "truncated"
    if kind is None and not fault.latency_ms:
        raise ValueError("give one of errcode, http_status, timeout, garbage, or latency_ms")
    if "applied" in data:
        fault.applied = bool(data["applied"])
    return fault


@dataclass
class FaultBook:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queued: dict[str, list[Fault]] = field(default_factory=dict)
    _latency: dict[str | None, int] = field(default_factory=dict)  # None: every path
    # Random faults: path -> (share of calls, the faults to draw from, the generator).
    _chaos: dict[str, tuple[float, list[Fault], random.Random]] = field(default_factory=dict)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queued.setdefault(fault.path, []).append(fault)

    def take(self, path: str, appid: str | None) -> Fault | None:
        if path not in self._queued:  # the common case: no lock, no work
            return self._chaos_draw(path) if self._chaos else None
        with self._lock:
            queue = self._queued.get(path) or []
            for index, fault in enumerate(queue):
                if fault.appid is None or fault.appid == appid:
                    fault.times -= 1
                    if fault.times <= 0:
                        del queue[index]
                        if not queue:
                            del self._queued[path]
                    return fault
        return None

    def _chaos_draw(self, path: str) -> Fault | None:
        with self._lock:
            chaos = self._chaos.get(path)
            if chaos is None:
                return None
            rate, faults, rng = chaos
            if rng.random() >= rate:
                return None
            return copy.copy(rng.choice(faults))

    def set_chaos(self, path: str, rate: float, faults: list[Fault], seed: int | None = None) -> None:
        """From now on a share ``rate`` of the calls to ``path`` get one of ``faults`` at random."""
        with self._lock:
            if rate > 0 and faults:
                self._chaos[path] = (rate, faults, random.Random(seed))
            else:
                self._chaos.pop(path, None)

    def clear_chaos(self) -> None:
        with self._lock:
            self._chaos.clear()

    def chaos(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {p: {"rate": r, "faults": [f.describe() for f in fs]} for p, (r, fs, _) in self._chaos.items()}

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for queue in self._queued.values() for f in queue]

    def set_latency(self, path: str | None, ms: int) -> None:
        with self._lock:
            if ms > 0:
                self._latency[path] = ms
            else:
                self._latency.pop(path, None)

    def clear_latency(self) -> None:
        with self._lock:
            self._latency.clear()

    def latency_ms(self, path: str) -> int:
        if not self._latency:
            return 0
        latency = self._latency  # reads of a dict are atomic; a racing change only shifts one call
        return latency.get(path, latency.get(None, 0))

    def latencies(self) -> dict[str, int]:
        with self._lock:
            return {(k or "*"): v for k, v in self._latency.items()}
