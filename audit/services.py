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
    return AuditEvent.objects.create(**_fields(actor, action, authorizer_appid, subject, outcome, errcode, errmsg, rid, detail))


def audit_record_many(events: Iterable[dict[str, Any]]) -> None:
    """Bulk variant for fan-out writes: one INSERT on PostgreSQL (SQLite splits at its parameter limit)."""
    AuditEvent.objects.bulk_create([AuditEvent(**_fields(**event)) for event in events])


def _fields(
    actor: Actor,
    action: str,
    authorizer_appid: str = "",
    subject: str = "",
    outcome: str = "",
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "actor_kind": actor.kind,
        "actor_id": actor.id[:64],
        "actor_label": actor.label[:150],
        "authorizer_appid": authorizer_appid,
        "action": action,
        "subject": subject[:128],
        "outcome": outcome,
        "errcode": errcode,
        "errmsg": (errmsg or "")[:255],
        "rid": (rid or "")[:64],
        "detail": detail or {},
    }
