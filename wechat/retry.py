"""The one backoff policy: how long to wait before trying again after a failure.

Every countdown in the service comes from ``Backoff.delay``: deletions, authorization events,
permission re-reads, token refreshes, kf-account syncs and webhook deliveries. What is worth a retry
at all is decided elsewhere (``wechat.errors``: tasks retry on ``Transient`` and nothing else).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2**62 seconds is beyond any cap: failures past this exponent cannot change the ceiling.
_MAX_EXPONENT = 62


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff, bounded, with jitter.

    After the n-th consecutive failure the wait is at most ``min(cap_seconds, base_seconds * 2**(n-1))``.
    ``jitter`` is the fraction of that ceiling left to chance: 0 waits exactly the ceiling, 0.5 waits
    between half of it and all of it, 1 anywhere from 0 ("full jitter"). Jitter spreads out the
    retries of work that failed together, so they do not reach WeChat together again.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError("base_seconds and cap_seconds must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def ceiling(self, failures: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** min(max(0, failures - 1), _MAX_EXPONENT))

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1 for the first)."""
        ceiling = self.ceiling(failures)
        return random.uniform(ceiling * (1 - self.jitter), ceiling)
