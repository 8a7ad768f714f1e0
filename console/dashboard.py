"""What the dashboard shows: the platform's credentials, merchants by state, deletions, failures, errcodes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential, PlatformAlert
from authorizers.policy import eligibility
from kfaccounts.models import DeletionReason, DeletionRequest, DeletionStatus

TICKET_WARNING_AGE = timedelta(minutes=20)  # WeChat pushes a ticket every 10 minutes
STATUS_COLOURS = {
    DeletionStatus.SUCCEEDED: "#2e7d32",
    DeletionStatus.FAILED: "#c62828",
    DeletionStatus.REJECTED: "#ef6c00",
    DeletionStatus.CANCELLED: "#757575",
    DeletionStatus.PENDING: "#1565c0",
    DeletionStatus.RUNNING: "#6a1b9a",
}
STATUS_LABELS = {
    DeletionStatus.SUCCEEDED: _("succeeded"),
    DeletionStatus.FAILED: _("failed"),
    DeletionStatus.REJECTED: _("rejected"),
    DeletionStatus.CANCELLED: _("cancelled"),
    DeletionStatus.PENDING: _("pending"),
    DeletionStatus.RUNNING: _("running"),
}
CHART_HEIGHT = 120  # px of the tallest column
REASON_LABELS = {
    "authorization_revoked": _("authorization revoked"),
    "deactivated": _("deactivated by staff"),
    "account_abnormal": _("account not in normal status"),
    "unsupported_account_type": _("account type not supported"),
    "not_certified": _("not certified"),
    "missing_permission": _("no kf permission set granted"),
}


@dataclass
class Component:
    appid: str
    ticket_received_at: datetime | None
    ticket_age: timedelta | None
    ticket_stale: bool
    token_expires_at: datetime | None
    token_valid: bool


@dataclass
class Column:
    label: str
    total: int
    segments: list[dict[str, Any]] = field(default_factory=list)


def component_health(now: datetime) -> Component:
    credential = ComponentCredential.objects.filter(component_appid=settings.WECHAT_COMPONENT_APPID).first()
    received = credential.ticket_received_at if credential else None
    expires = credential.access_token_expires_at if credential else None
    age = now - received if received else None
    return Component(
        appid=settings.WECHAT_COMPONENT_APPID,
        ticket_received_at=received,
        ticket_age=age,
        ticket_stale=age is None or age > TICKET_WARNING_AGE,
        token_expires_at=expires,
        token_valid=bool(expires and expires > now),
    )


def merchants_by_state(now: datetime) -> dict[str, Any]:
    reasons: Counter[str] = Counter()
    counts = Counter({"eligible": 0, "not_eligible": 0, "revoked": 0, "deactivated": 0, "paused": 0})
    for authorizer in Authorizer.objects.all():
        if authorizer.status == AuthorizerStatus.REVOKED:
            counts["revoked"] += 1
        elif authorizer.status == AuthorizerStatus.DEACTIVATED:
            counts["deactivated"] += 1
        else:
            verdict = eligibility(authorizer)
            if verdict.eligible:
                counts["eligible"] += 1
            else:
                counts["not_eligible"] += 1
                for reason in verdict.reasons:
                    reasons[reason.code] += 1
        if authorizer.quota_paused(now):
            counts["paused"] += 1
    return {
        "counts": counts,
        "reasons": [(REASON_LABELS.get(code, code), n) for code, n in sorted(reasons.items(), key=lambda i: -i[1])],
    }


def _columns(since: datetime, step: timedelta, steps: int, trunc: Any, label_format: str) -> list[Column]:
    rows = (
        DeletionRequest.objects.filter(created_at__gte=since)
        .annotate(bucket=trunc("created_at", tzinfo=timezone.get_current_timezone()))
        .values("bucket", "status")
        .annotate(n=Count("id"))
    )
    by_bucket: dict[datetime, Counter[str]] = {}
    for row in rows:
        by_bucket.setdefault(timezone.localtime(row["bucket"]), Counter())[row["status"]] += row["n"]
    start = timezone.localtime(since)
    start = start.replace(minute=0, second=0, microsecond=0)
    if step >= timedelta(days=1):
        start = start.replace(hour=0)
    columns = []
    for index in range(steps):
        at = start + step * index
        counter = by_bucket.get(at, Counter())
        columns.append(Column(label=at.strftime(label_format), total=sum(counter.values())))
        columns[-1].segments = [
            {"status": STATUS_LABELS[status], "count": counter[status], "colour": colour}
            for status, colour in STATUS_COLOURS.items()
            if counter[status]
        ]
    peak = max((c.total for c in columns), default=0) or 1
    for column in columns:
        for segment in column.segments:
            segment["height"] = max(1, round(segment["count"] * CHART_HEIGHT / peak))
    return columns


def deletions_summary(now: datetime) -> dict[str, Any]:
    day, week = now - timedelta(hours=24), now - timedelta(days=7)
    totals = DeletionRequest.objects.aggregate(
        pending=Count(
            "id",
            filter=Q(status=DeletionStatus.PENDING)
            & ~Q(reason__in=[DeletionReason.QUOTA_EXHAUSTED, DeletionReason.PLATFORM_HELD]),
        ),
        deferred=Count("id", filter=Q(status=DeletionStatus.PENDING, reason=DeletionReason.QUOTA_EXHAUSTED)),
        held=Count("id", filter=Q(status=DeletionStatus.PENDING, reason=DeletionReason.PLATFORM_HELD)),
        running=Count("id", filter=Q(status=DeletionStatus.RUNNING)),
        failed_24h=Count("id", filter=Q(status=DeletionStatus.FAILED, created_at__gte=day)),
    )

    def by_status(since: datetime) -> list[tuple[str, int, str, Any]]:
        counts = dict(
            DeletionRequest.objects.filter(created_at__gte=since)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        return [
            (status, counts.get(status, 0), colour, STATUS_LABELS[status]) for status, colour in STATUS_COLOURS.items()
        ]

    local_now = timezone.localtime(now)
    return {
        "totals": totals,
        "last_24h": by_status(day),
        "last_7d": by_status(week),
        "hours": _columns(local_now - timedelta(hours=23), timedelta(hours=1), 24, TruncHour, "%H"),
        "days": _columns(local_now - timedelta(days=6), timedelta(days=1), 7, TruncDay, "%m-%d"),
        "legend": [(status, colour, STATUS_LABELS[status]) for status, colour in STATUS_COLOURS.items()],
    }


def newest_failures(limit: int = 10) -> list[DeletionRequest]:
    return list(
        DeletionRequest.objects.filter(status=DeletionStatus.FAILED)
        .select_related("authorizer")
        .order_by("-finished_at", "-id")[:limit]
    )


def upstream_errors(now: datetime) -> dict[str, Any]:
    """WeChat answers in the last 24 hours by errcode, from the audit log (every call is audited)."""
    calls = AuditEvent.objects.filter(action__startswith="wechat.", at__gte=now - timedelta(hours=24))
    total = calls.count()
    rows = calls.exclude(errcode=0).values("errcode", "outcome").annotate(n=Count("id")).order_by("-n")[:15]
    return {
        "total": total,
        "rows": [
            {
                "errcode": row["errcode"] if row["errcode"] is not None else gettext("none (HTTP/timeout)"),
                "outcome": row["outcome"],
                "count": row["n"],
                "rate": f"{100 * row['n'] / total:.1f}%" if total else "—",
            }
            for row in rows
        ],
    }


def merchant_alerts(limit: int = 20) -> list[PlatformAlert]:
    """Open alerts about one merchant, newest first (the platform-wide ones are the banner on
    every page); the alert list has the rest."""
    return list(
        PlatformAlert.objects.filter(cleared_at__isnull=True)
        .exclude(authorizer_appid="")
        .order_by("-first_seen_at", "-id")[:limit]
    )


def dashboard_context() -> dict[str, Any]:
    now = timezone.now()
    return {
        "component": component_health(now),
        "merchants": merchants_by_state(now),
        "deletions": deletions_summary(now),
        "failures": newest_failures(),
        "merchant_alerts": merchant_alerts(),
        "upstream": upstream_errors(now),
        "ticket_warning_minutes": int(TICKET_WARNING_AGE.total_seconds() // 60),
        "state_labels": {
            "eligible": _("eligible"),
            "not_eligible": _("not eligible"),
            "revoked": _("revoked"),
            "deactivated": _("deactivated"),
            "paused": _("paused for quota"),
        },
    }
