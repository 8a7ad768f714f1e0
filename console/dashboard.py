"""What the dashboard shows: is everything fine, and if not, what to do.

At the top one status line and the tiles of what needs a person (cleanup runs awaiting approval,
open alerts, failing webhook endpoints, held deletions), each linking to its filtered list; then
failed deletions grouped by merchant and reason, the merchants' own mistakes apart from the
platform's problems, each with its meaning and what to do (console/guidance.py); then the platform's
credentials, merchants by state, deletions over time and WeChat's errors.

Every query is a count or a GROUP BY over indexed columns, restricted to open work or recent rows
(the last 24 hours or 7 days), so the page costs the same with 2 million deletions as with 200.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from authorizers.alerts import BLOCKING_CODES
from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential, PlatformAlert
from authorizers.platforms import platforms_active
from authorizers.policy import eligible_q, rule_conditions
from cleanup.models import CleanupRun, RunStatus
from console.guidance import MERCHANT, failure_hint, guidance, meaning
from kfaccounts.models import DeletionReason, DeletionRequest, DeletionStatus
from webhooks.models import DeliveryStatus, WebhookDelivery

TICKET_WARNING_AGE = timedelta(minutes=20)  # WeChat pushes a ticket every 10 minutes
FAILURE_WINDOW = timedelta(days=7)  # failed deletions older than this are history, not work
WEBHOOK_WINDOW = timedelta(hours=24)
FAILURE_GROUPS_SHOWN = 15  # per side; the rest are counted and linked
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
    """One platform's health: its ticket, its component token, what holds it, its merchants."""

    appid: str
    ticket_received_at: datetime | None
    ticket_age: timedelta | None
    ticket_stale: bool
    token_expires_at: datetime | None
    token_valid: bool
    name: str = ""
    blocking: list[PlatformAlert] = field(default_factory=list)
    active_merchants: int = 0


@dataclass
class Column:
    label: str
    total: int
    segments: list[dict[str, Any]] = field(default_factory=list)


def components_health(now: datetime) -> list[Component]:
    """Every platform served, the default first: a handful of rows read in four queries whatever
    their number (credentials, open blocking alerts, active merchants per platform)."""
    platforms = platforms_active()
    appids = [p.component_appid for p in platforms]
    credentials = {c.component_appid: c for c in ComponentCredential.objects.filter(component_appid__in=appids)}
    blocking: dict[str, list[PlatformAlert]] = {}
    for alert in PlatformAlert.objects.filter(
        cleared_at__isnull=True, authorizer_appid="", code__in=BLOCKING_CODES, component_appid__in=appids
    ):
        blocking.setdefault(alert.component_appid, []).append(alert)
    merchants = dict(
        Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE)
        .order_by()
        .values_list("platform__component_appid")
        .annotate(n=Count("pk"))
        .values_list("platform__component_appid", "n")
    )
    health = []
    for platform in platforms:
        credential = credentials.get(platform.component_appid)
        received = credential.ticket_received_at if credential else None
        expires = credential.access_token_expires_at if credential else None
        age = now - received if received else None
        health.append(
            Component(
                appid=platform.component_appid,
                name=platform.name,
                ticket_received_at=received,
                ticket_age=age,
                ticket_stale=age is None or age > TICKET_WARNING_AGE,
                token_expires_at=expires,
                token_valid=bool(expires and expires > now),
                blocking=blocking.get(platform.component_appid, []),
                active_merchants=merchants.get(platform.component_appid, 0),
            )
        )
    return health


def merchants_by_state(now: datetime) -> dict[str, Any]:
    """Merchants by state and, for the active ones not eligible, by failed rule: one aggregate over
    the merchants with the policy's SQL conditions (the same as Authorizer.objects.eligible()), so
    no merchant is loaded into Python: one pass over 100,000 rows, not 100,000 verdicts."""
    conditions = rule_conditions()
    judged = ~Q(status__in=[AuthorizerStatus.REVOKED, AuthorizerStatus.DEACTIVATED])
    eligible = eligible_q()
    by_reason = {code: condition for code, condition in conditions.items() if code not in STATUS_RULES}
    row = Authorizer.objects.aggregate(
        eligible=Count("pk", filter=eligible),
        not_eligible=Count("pk", filter=judged & ~eligible),
        revoked=Count("pk", filter=Q(status=AuthorizerStatus.REVOKED)),
        deactivated=Count("pk", filter=Q(status=AuthorizerStatus.DEACTIVATED)),
        paused=Count("pk", filter=Q(quota_paused_until__gt=now)),
        **{f"reason_{code}": Count("pk", filter=judged & ~condition) for code, condition in by_reason.items()},
    )
    reasons = {code: row[f"reason_{code}"] for code in by_reason if row[f"reason_{code}"]}
    return {
        "counts": Counter(
            {name: row[name] for name in ("eligible", "not_eligible", "revoked", "deactivated", "paused")}
        ),
        "reasons": [(REASON_LABELS.get(code, code), n) for code, n in sorted(reasons.items(), key=lambda i: -i[1])],
    }


# Rules that are the merchant's status: counted as revoked / deactivated, never as a reason.
STATUS_RULES = frozenset({"authorization_revoked", "deactivated"})


def _hourly(since: datetime) -> dict[datetime, Counter[str]]:
    """Deletions requested since then, by local hour and status: ONE scan of the created_at range,
    from which both charts and both by-status tables are summed (each used to be its own scan)."""
    rows = (
        DeletionRequest.objects.filter(created_at__gte=since)
        .annotate(bucket=TruncHour("created_at", tzinfo=timezone.get_current_timezone()))
        .values("bucket", "status")
        .annotate(n=Count("id"))
    )
    by_hour: dict[datetime, Counter[str]] = {}
    for row in rows:
        by_hour.setdefault(timezone.localtime(row["bucket"]), Counter())[row["status"]] += row["n"]
    return by_hour


def _column(label: str, counter: Counter[str]) -> Column:
    return Column(
        label=label,
        total=sum(counter.values()),
        segments=[
            {"status": STATUS_LABELS[status], "count": counter[status], "colour": colour}
            for status, colour in STATUS_COLOURS.items()
            if counter[status]
        ],
    )


def _scaled(columns: list[Column]) -> list[Column]:
    peak = max((c.total for c in columns), default=0) or 1
    for column in columns:
        for segment in column.segments:
            segment["height"] = max(1, round(segment["count"] * CHART_HEIGHT / peak))
    return columns


def deletions_summary(now: datetime) -> dict[str, Any]:
    day = now - timedelta(hours=24)
    # Only open rows and the last day's failures: the status index (and created_at's) serve it.
    totals = DeletionRequest.objects.filter(
        Q(status__in=[DeletionStatus.PENDING, DeletionStatus.RUNNING])
        | Q(status=DeletionStatus.FAILED, created_at__gte=day)
    ).aggregate(
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

    local_now = timezone.localtime(now)
    this_hour = local_now.replace(minute=0, second=0, microsecond=0)
    first_day = (local_now - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    by_hour = _hourly(first_day)
    hours = [this_hour - timedelta(hours=23 - index) for index in range(24)]
    days = [(first_day + timedelta(days=index)).date() for index in range(7)]
    by_day: dict[Any, Counter[str]] = {day: Counter() for day in days}
    for at, counter in by_hour.items():
        if at.date() in by_day:
            by_day[at.date()].update(counter)
    # "Last 24 hours" is the hourly chart's 24 columns, "last 7 days" the daily chart's 7.
    last_24h: Counter[str] = sum((by_hour.get(at, Counter()) for at in hours), Counter())
    last_7d: Counter[str] = sum(by_day.values(), Counter())

    def table(counts: Counter[str]) -> list[tuple[str, int, str, Any]]:
        return [(status, counts[status], colour, STATUS_LABELS[status]) for status, colour in STATUS_COLOURS.items()]

    return {
        "totals": totals,
        "last_24h": table(last_24h),
        "last_7d": table(last_7d),
        "hours": _scaled([_column(at.strftime("%H"), by_hour.get(at, Counter())) for at in hours]),
        "days": _scaled([_column(day.strftime("%m-%d"), by_day[day]) for day in days]),
        "legend": [(status, colour, STATUS_LABELS[status]) for status, colour in STATUS_COLOURS.items()],
    }


@dataclass
class FailureGroup:
    authorizer: Authorizer | None
    reason: str
    errcode: int | None
    count: int
    last: datetime | None
    meaning: str
    action: str
    url: str

    @property
    def errcode_shown(self) -> int | None:
        """The errcode, unless the meaning already names it ("… (65400)")."""
        return None if self.errcode is None or f"({self.errcode}" in self.meaning else self.errcode


def failures_grouped(now: datetime) -> dict[str, Any]:
    """Failed deletions of the last 7 days by merchant × reason: the merchants' own mistakes
    (they must act) apart from the platform's problems (the operations team must act)."""
    since = now - FAILURE_WINDOW
    rows = list(
        DeletionRequest.objects.filter(status=DeletionStatus.FAILED, created_at__gte=since)
        .values("authorizer_id", "reason", "errcode")
        .annotate(n=Count("id"), last=Max("finished_at"))
        .order_by("-n", "authorizer_id", "reason")
    )
    changelist = reverse("admin:kfaccounts_deletionrequest_changelist")
    sides: dict[str, list[FailureGroup]] = {"merchant": [], "platform": []}
    totals = {"merchant": 0, "platform": 0}
    groups_per_side = {"merchant": 0, "platform": 0}
    shown: list[tuple[str, dict[str, Any]]] = []
    for row in rows:  # thousands of groups at scale: counted all, built only for the ones shown
        found = guidance(row["reason"])
        side = "merchant" if found is not None and found.side == MERCHANT else "platform"
        totals[side] += row["n"]
        groups_per_side[side] += 1
        if groups_per_side[side] <= FAILURE_GROUPS_SHOWN:
            shown.append((side, row))
    authorizers = Authorizer.objects.in_bulk({row["authorizer_id"] for _, row in shown})
    for side, row in shown:
        sides[side].append(
            FailureGroup(
                authorizer=authorizers.get(row["authorizer_id"]),
                reason=row["reason"],
                errcode=row["errcode"],
                count=row["n"],
                last=row["last"],
                meaning=meaning(row["reason"]),
                action=failure_hint(row["reason"]),
                url=f"{changelist}?status__exact=failed&reason={row['reason'] or '-'}"
                f"&authorizer__id__exact={row['authorizer_id']}",
            )
        )
    return {
        side: {
            "groups": groups,
            "more": max(0, groups_per_side[side] - FAILURE_GROUPS_SHOWN),
            "total": totals[side],
        }
        for side, groups in sides.items()
    } | {"days": FAILURE_WINDOW.days, "url": f"{changelist}?status__exact=failed"}


@dataclass
class Tile:
    """One thing that may need a person: how many, where the list is, what to do when it is not 0."""

    key: str
    label: Any
    count: int
    url: str
    todo: Any
    detail: str = ""


def _changelist(name: str, query: str) -> str:
    return f"{reverse(f'admin:{name}_changelist')}?{query}"


def attention_tiles(now: datetime) -> list[Tile]:
    open_alerts = PlatformAlert.objects.filter(cleared_at__isnull=True).aggregate(
        total=Count("id"), platform=Count("id", filter=Q(authorizer_appid=""))
    )
    alerts_total, platform_alerts = open_alerts["total"], open_alerts["platform"]
    runs = CleanupRun.objects.filter(status=RunStatus.AWAITING_APPROVAL).count()
    held = DeletionRequest.objects.filter(status=DeletionStatus.PENDING, reason=DeletionReason.PLATFORM_HELD).count()
    failing = (
        WebhookDelivery.objects.filter(
            Q(status=DeliveryStatus.FAILED, created_at__gte=now - WEBHOOK_WINDOW)
            | Q(status=DeliveryStatus.PENDING, attempts__gt=0)
        )
        .values("endpoint_id")
        .distinct()
        .count()
    )
    return [
        Tile(
            key="runs",
            label=ngettext("cleanup run awaiting approval", "cleanup runs awaiting approval", runs),
            count=runs,
            url=_changelist("cleanup_cleanuprun", "status__exact=awaiting_approval"),
            todo=_(
                "Each stopped at its blast-radius limit: review the accounts it would delete, then approve or decline."
            ),
        ),
        Tile(
            key="alerts",
            label=ngettext("open alert", "open alerts", alerts_total),
            count=alerts_total,
            url=_changelist("authorizers_platformalert", "cleared_at__isempty=1"),
            todo=_("Fix what each one says, then mark it fixed."),
            detail=gettext("%(platform)d of the platform, %(merchants)d of merchants")
            % {"platform": platform_alerts, "merchants": alerts_total - platform_alerts},
        ),
        Tile(
            key="webhooks",
            label=ngettext("failing webhook endpoint", "failing webhook endpoints", failing),
            count=failing,
            url=_changelist("webhooks_webhookdelivery", "status__exact=failed"),
            todo=_(
                "The merchant's receiver refuses or misses our events: tell the merchant, then retry the deliveries."
            ),
        ),
        Tile(
            key="held",
            label=ngettext("deletion held", "deletions held", held),
            count=held,
            url=_changelist("kfaccounts_deletionrequest", "status__exact=pending&reason=platform_held"),
            todo=_("Held while a platform alert (61004) is open: fix it and they continue by themselves."),
        ),
    ]


def overall_status(components: list[Component], tiles: list[Tile], failures: dict[str, Any]) -> dict[str, Any]:
    """Healthy, or needs attention with every reason. Merchants' own mistakes do not make the
    platform unhealthy: they are the merchants' to fix, and said so apart. With several platforms
    each reason about one names it."""
    reasons = []
    for component in components:
        prefix = f"{component.name}: " if len(components) > 1 else ""
        if component.ticket_stale:
            reasons.append(prefix + gettext("no verify ticket from WeChat for more than 20 minutes"))
        elif not component.token_valid:
            reasons.append(prefix + gettext("the component token has expired"))
    for tile in tiles:
        if tile.count:
            reasons.append(f"{tile.count} {tile.label}")
    if failures["platform"]["total"]:
        reasons.append(
            ngettext(
                "%(n)d deletion failed on the platform's side in the last %(days)d days",
                "%(n)d deletions failed on the platform's side in the last %(days)d days",
                failures["platform"]["total"],
            )
            % {"n": failures["platform"]["total"], "days": failures["days"]}
        )
    return {
        "healthy": not reasons,
        "reasons": reasons,
        "merchant_mistakes": failures["merchant"]["total"],
    }


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
                "meaning": meaning(row["outcome"]),
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
    components = components_health(now)
    tiles = attention_tiles(now)
    failures = failures_grouped(now)
    return {
        "status": overall_status(components, tiles, failures),
        "tiles": tiles,
        "components": components,
        "several_platforms": len(components) > 1,
        "merchants": merchants_by_state(now),
        "deletions": deletions_summary(now),
        "failures": failures,
        "failure_sides": [
            (
                failures["merchant"] | {"key": "merchant"},
                _("Merchants' own mistakes (the merchant must act)"),
                _("No merchant mistakes."),
            ),
            (
                failures["platform"] | {"key": "platform"},
                _("Platform problems (ours to fix)"),
                _("No failures on the platform's side."),
            ),
        ],
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
