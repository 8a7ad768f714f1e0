"""The only writer of the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.models import ActorKind, AuditEvent


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


def audit_event(
    *,
    actor: Actor,
    action: str,
    authorizer_appid: str = "",
    subject: str = "",
    outcome: str = "",
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """One audit line, not yet saved: the single place that shapes what the log holds."""
    return AuditEvent(
        actor_kind=actor.kind,
        actor_id=actor.id[:64],
        actor_label=actor.label[:150],
        authorizer_appid=authorizer_appid,
        action=action,
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
    action: str,
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
