"""The only writer of the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from audit.actions import AuditAction
from audit.models import ActorKind, AuditEvent
from dbkit.bulk import insert_many


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked for something: recorded on every audit event and every deletion request."""

    kind: str
    id: str = ""
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, label=label)

    @classmethod
    def schedule(cls, name: str) -> Actor:
        return cls(kind=ActorKind.SCHEDULE, label=name)

    @classmethod
    def staff(cls, user: Any) -> Actor:
        return cls(kind=ActorKind.STAFF, id=str(user.pk), label=user.get_username())

    @classmethod
    def wechat(cls) -> Actor:
        return cls(kind=ActorKind.WECHAT, label="wechat")

    @property
    def merchant_label(self) -> str:
        return merchant_label(self.kind, self.label)


def merchant_label(kind: str, label: str) -> str:
    """Who asked, as a merchant may read it (webhook payloads): a staff member's user name is the
    platform's business, so every staff actor is just "staff"; the merchant's own keys, schedules and
    the system keep their labels."""
    return "staff" if kind == ActorKind.STAFF else label


def audit_event(
    *,
    actor: Actor,
    action: AuditAction,
    authorizer_appid: str = "",
    subject: str = "",
    outcome: str = "",
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """One audit line, not yet saved: the single place that shapes what the log holds.

    ``action`` must be in the vocabulary (audit/actions.py): anything else raises ValueError.
    """
    return AuditEvent(
        actor_kind=actor.kind,
        actor_id=actor.id[:64],
        actor_label=actor.label[:150],
        authorizer_appid=authorizer_appid,
        action=AuditAction(action).value,
        subject=subject[:128],
        outcome=outcome,
        errcode=errcode,
        errmsg=(errmsg or "")[:255],
        rid=(rid or "")[:64],
        detail=detail or {},
    )


def audit_record(
    *,
    actor: Actor,
    action: AuditAction,
    authorizer_appid: str = "",
    subject: str = "",
    outcome: str = "",
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """One audit line (see ``audit_event``), saved."""
    event = audit_event(
        actor=actor,
        action=action,
        authorizer_appid=authorizer_appid,
        subject=subject,
        outcome=outcome,
        errcode=errcode,
        errmsg=errmsg,
        rid=rid,
        detail=detail,
    )
    event.save()
    return event


def audit_record_many(events: Iterable[AuditEvent]) -> None:
    """Bulk variant for fan-out writes: one INSERT on PostgreSQL (SQLite splits at its parameter limit)."""
    AuditEvent.objects.bulk_create(list(events))


def audit_record_each(
    *,
    actor: Actor,
    action: AuditAction,
    authorizer_appid: str,
    subjects: Sequence[str],
    outcomes: Sequence[str],
    details: Sequence[dict[str, Any]],
    errcode: int | None = None,
    errmsg: str = "",
) -> None:
    """One line per subject (with its outcome and detail), all else shared: a bulk request's 1,000
    lines or a batch's successes in one set-based INSERT (dbkit.bulk), the values shaped as
    ``audit_event`` shapes them."""
    template = audit_event(
        actor=actor, action=action, authorizer_appid=authorizer_appid, errcode=errcode, errmsg=errmsg
    )
    insert_many(
        AuditEvent,
        shared={
            name: getattr(template, name)
            for name in (
                "actor_kind",
                "actor_id",
                "actor_label",
                "authorizer_appid",
                "action",
                "errcode",
                "errmsg",
                "rid",
            )
        },
        varying={
            "subject": [subject[:128] for subject in subjects],
            "outcome": list(outcomes),
            "detail": list(details),
        },
    )


def audit_events_prune(*, older_than: Any, batch: int = 1000, max_batches: int = 1000) -> int:
    """Retention: delete events older than ``older_than`` in batches of ``batch`` rows.

    The only deletion the log ever sees (it is append-only otherwise); small batches keep each
    transaction short so writers are never blocked for long. Returns how many were deleted.
    """
    deleted = 0
    for _ in range(max_batches):
        # Oldest first by ``at``: its index ends at the cutoff. By id, the batch that finds fewer than
        # ``batch`` left walked the whole primary key looking for more (7 s at 6,000,000 events).
        ids = list(AuditEvent.objects.filter(at__lt=older_than).order_by("at").values_list("id", flat=True)[:batch])
        if not ids:
            break
        deleted += AuditEvent.objects.filter(id__in=ids).delete()[0]
        if len(ids) < batch:
            break
    return deleted
