"""Claim, lease, heartbeat, sweep: the one primitive for rows that workers take turns at.

A *leased* row is work stored in the database (a deletion, a cleanup run, a webhook delivery). The
row, not the broker, is the truth: a message only says "look at the table". Its model has

- a status with a *waiting* value (``pending``) and a *working* value (``running``);
- ``next_attempt_at``: when it is due (NULL: now);
- ``lease_expires_at``: until when the worker that claimed it owns it;
- ``attempts``: how many times it was claimed (the claim's fencing token: a worker that lost its
  lease finds the count moved on and its late writes change nothing);
- optionally a "sent at" column (``dispatched_at``) and an ``updated_at`` column.

The model's manager comes from a ``LeaseQuerySet`` subclass naming those columns and values::

    class DeletionQuerySet(LeaseQuerySet["DeletionRequest"]):
        waiting, working = "pending", "running"        # the rest keep their default names

    class DeletionRequest(models.Model):
        ...
        objects = DeletionQuerySet.as_manager()

and then every app does the same five things the same way:

``due(now)``
    waiting and due: the one "due" filter (``next_attempt_at`` NULL or not after ``now``).
``claim(now=..., lease=..., limit=...)``
    waiting and due (a little early is fine: ``Lease.early``) → working, ``attempts + 1``, the lease
    set; rows locked with SKIP LOCKED so concurrent claims never share a row. Returns the rows.
``release(row, **changes)``
    leave ``working`` (to a final state, or back to waiting with a new due time) only while the
    claim is still ours: one conditional UPDATE on (pk, working, attempts); False if a sweeper or
    another worker took it meanwhile, and then the caller writes nothing else.
``renew(rows, lease=...)`` and ``heartbeat(lease, renew)``
    push the lease end forward while the work runs, so a lease can be short (seconds) and a crashed
    worker's rows come back quickly, however long a healthy worker takes.
``expired(now)`` / ``requeue_expired(now)`` and ``unsent(now, stale_after)``
    what a sweeper looks at: working rows whose lease ended (their worker died), and waiting rows
    that are due but whose message was never sent or was lost (a broker restart).

Each app keeps only its own transitions (which states, what to audit); the sweeper task of each app
runs on the beat schedule. ``Next`` is what a claim-and-run service tells its task to do next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from django.db import close_old_connections, connection, connections, models, transaction
from django.db.models import F, Q
from django.db.models.expressions import Combinable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)

# A retry's countdown is timed by the clock of the worker that scheduled it, the claim by the one
# that runs it: a message arriving a little early (clock skew) runs instead of waiting for a sweep.
CLAIM_EARLY_TOLERANCE = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class Lease:
    """How long a claim lasts, and how often a running worker renews it.

    ``seconds``: a claim not renewed for this long is presumed dead and a sweep takes it back.
    ``heartbeat_seconds``: renew this often while the work runs (None: never; the lease must then
    outlast the longest piece of work). ``max_hold_seconds``: stop renewing after this long, so a
    worker stuck for good (not dead) still loses its rows. ``early``: how early a due row may be
    claimed.
    """

    seconds: float
    heartbeat_seconds: float | None = None
    max_hold_seconds: float | None = None
    early: timedelta = CLAIM_EARLY_TOLERANCE

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("a lease lasts a positive number of seconds")
        if self.heartbeat_seconds is not None and not 0 < self.heartbeat_seconds < self.seconds:
            raise ValueError("the heartbeat must come more often than the lease runs out")

    def until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


@dataclass(frozen=True, slots=True)
class Next:
    """What a task does after a claim-and-run service: send itself again in ``countdown`` s, or not."""

    countdown: float | None = None


class LeaseQuerySet(models.QuerySet[M]):
    """Claim / lease / sweep for one model; subclass it and name the model's columns and values."""

    status_field: ClassVar[str] = "status"
    waiting: ClassVar[str] = "pending"
    working: ClassVar[str] = "running"
    due_field: ClassVar[str] = "next_attempt_at"
    lease_field: ClassVar[str] = "lease_expires_at"
    attempts_field: ClassVar[str] = "attempts"
    # When the row's message was last sent (None: the model has no such column; ``unsent`` then
    # reads ``touched_field``, which every write moves).
    sent_field: ClassVar[str | None] = "dispatched_at"
    touched_field: ClassVar[str | None] = "updated_at"

    # --- filters ---------------------------------------------------------------------------------

    def due_q(self, now: datetime) -> Q:
        """The one "due" condition, as a Q (for aggregates): waiting, and no due time or not after ``now``."""
        return Q(**{self.status_field: self.waiting}) & (
            Q(**{f"{self.due_field}__isnull": True}) | Q(**{f"{self.due_field}__lte": now})
        )

    def scheduled_q(self, now: datetime) -> Q:
        """Waiting, but not due before a later time (a retry's backoff, a pause)."""
        return Q(**{self.status_field: self.waiting, f"{self.due_field}__gt": now})

    def due(self, now: datetime) -> LeaseQuerySet[M]:
        """Waiting and due at ``now``: the one "due" filter."""
        return self.filter(self.due_q(now))

    def scheduled(self, now: datetime) -> LeaseQuerySet[M]:
        return self.filter(self.scheduled_q(now))

    def unsent(self, now: datetime, stale_after: timedelta) -> LeaseQuerySet[M]:
        """Due, and no message sent for it within ``stale_after`` (never sent, or the broker lost it)."""
        column = self.sent_field or self.touched_field
        if column is None:
            return self.due(now)
        return self.due(now).filter(Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__lt": now - stale_after}))

    def expired(self, now: datetime) -> LeaseQuerySet[M]:
        """Working rows whose lease ended: their worker died (or hung past every heartbeat)."""
        return self.filter(**{self.status_field: self.working, f"{self.lease_field}__lt": now})

    def held(self, row: M) -> LeaseQuerySet[M]:
        """This row, only while the claim ``row`` was read under is still the current one."""
        return self.filter(
            pk=row.pk, **{self.status_field: self.working, self.attempts_field: getattr(row, self.attempts_field)}
        )

    # --- writes ----------------------------------------------------------------------------------

    def claim(self, *, now: datetime, lease: Lease, limit: int | None = None, **changes: Any) -> list[M]:
        """Claim the due rows of this queryset (up to ``limit``, oldest first): waiting → working.

        One SELECT … FOR UPDATE SKIP LOCKED and one conditional UPDATE; ``changes`` are written too
        (e.g. ``started_at=now``). The returned rows carry their new status, attempts and lease.
        """
        until = lease.until(now)
        updates: dict[str, Any] = {
            self.status_field: self.working,
            self.attempts_field: F(self.attempts_field) + 1,
            self.lease_field: until,
            **changes,
        }
        if self.touched_field:
            updates[self.touched_field] = now
        manager = self.model._default_manager
        with transaction.atomic(using=self.db):
            # SKIP LOCKED: a concurrent claim takes the next rows instead of waiting for these
            # (PostgreSQL; SQLite's IMMEDIATE transactions serialize the claims).
            rows = list(self.due(now + lease.early).select_for_update(skip_locked=True).order_by("pk")[:limit])
            if not rows:
                return []
            pks = [row.pk for row in rows]
            claimed = manager.filter(pk__in=pks, **{self.status_field: self.waiting}).update(**updates)
            if claimed != len(rows) and self.touched_field:
                # Only where the rows were not locked (no FOR UPDATE): keep the ones this UPDATE moved.
                mine = set(
                    manager.filter(
                        pk__in=pks, **{self.status_field: self.working, self.touched_field: now}
                    ).values_list("pk", flat=True)
                )
                rows = [row for row in rows if row.pk in mine]
        for row in rows:
            setattr(row, self.attempts_field, getattr(row, self.attempts_field) + 1)
            for name, value in updates.items():
                if not isinstance(value, Combinable):
                    setattr(row, name, value)
        return rows

    def release(self, row: M, **changes: Any) -> bool:
        """Leave ``working`` only if the claim is still ours; False when a sweep took it meanwhile."""
        if self.touched_field:
            changes.setdefault(self.touched_field, _now())
        return self.held(row).update(**changes) == 1

    def renew(self, rows: Iterable[M], *, lease: Lease, now: datetime | None = None) -> int:
        """Push the lease end of the rows still held (same claim) to ``now + lease``; how many."""
        by_attempts: dict[int, list[Any]] = {}
        for row in rows:
            by_attempts.setdefault(getattr(row, self.attempts_field), []).append(row.pk)
        if not by_attempts:
            return 0
        held = Q()
        for attempts, pks in by_attempts.items():
            held |= Q(pk__in=pks, **{self.attempts_field: attempts})
        until = lease.until(now or _now())
        return self.filter(held, **{self.status_field: self.working}).update(**{self.lease_field: until})

    def requeue_expired(self, now: datetime, **changes: Any) -> int:
        """Expired claims back to waiting in one UPDATE (apps that audit each one use ``expired``)."""
        updates: dict[str, Any] = {self.status_field: self.waiting, self.lease_field: None, **changes}
        if self.touched_field:
            updates[self.touched_field] = now
        return self.expired(now).update(**updates)

    def mark_sent(self, pks: Iterable[Any], now: datetime) -> int:
        """Record that messages for these rows were sent now (``unsent`` leaves them alone a while)."""
        column = self.sent_field or self.touched_field
        if column is None:
            return 0
        return self.filter(pk__in=list(pks)).update(**{column: now})


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()


@contextmanager
def heartbeat(lease: Lease, renew: Callable[[], object]) -> Iterator[None]:
    """Call ``renew`` every ``lease.heartbeat_seconds`` from a helper thread while the block runs.

    The thread has its own database connection, so it can only renew claims that are committed: inside
    a caller's transaction (a test's, or ``ATOMIC_REQUESTS``) the claim is not, and no thread starts
    (it could only wait on the caller's row locks). A failed renewal is logged and tried again at the
    next beat: at worst the lease runs out and a sweep hands the row to another worker, which the
    claim's attempt count makes safe.
    """
    every = lease.heartbeat_seconds
    if every is None or connection.in_atomic_block:
        yield
        return
    stop = threading.Event()
    give_up = None if lease.max_hold_seconds is None else time.monotonic() + lease.max_hold_seconds

    def beat() -> None:
        try:
            while not stop.wait(every):
                if give_up is not None and time.monotonic() > give_up:
                    log.warning("lease held for %.0f s: no longer renewed", lease.max_hold_seconds)
                    return
                try:
                    renew()
                except Exception as exc:  # the database is away: try again at the next beat
                    log.warning("lease renewal failed: %s", type(exc).__name__)
                    close_old_connections()
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
