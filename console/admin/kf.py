"""Kf accounts (with "delete selected", through the API's service) and deletions (retry, cancel)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from authorizers.models import Authorizer
from authorizers.policy import NotEligible, eligibility
from console.admin.base import ObjectActionsAdmin
from console.admin.bigtables import BigTableAdmin, MerchantListFilter, appid_search, fixed_values_filter
from console.admin.confirm import Consequences, Target, confirmed
from console.admin.helpers import (
    ByPlatformAdmin,
    admin_link,
    admin_url,
    console_action,
    holds,
    inline_table,
    local_time,
    merchant_name,
    reason_with_hint,
    staff_actor,
)
from console.guidance import failure_hint
from kfaccounts import services
from kfaccounts.models import ACTIVE_STATUSES, DeletionRequest, DeletionStatus, KfAccount
from kfaccounts.validation import MalformedKfAccount


class PresentFilter(admin.SimpleListFilter):
    title = _("present upstream")
    parameter_name = "present"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("present")), ("no", _("gone"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "yes":
            return queryset.filter(gone_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(gone_at__isnull=False)
        return None


def _merchant_cell(authorizer: Authorizer) -> str:
    return admin_link(authorizer, authorizer.nickname or authorizer.appid)


def _accounts(rows: list[KfAccount]) -> str:
    return ", ".join(kf.kf_account for kf in rows)


def deletion_consequences(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Consequences:
    plan = deletion_plan(queryset.select_related("authorizer"))
    eligible = sum(len(group["eligible"]) for group in plan)
    targets, skipped = [], []
    for group in plan:
        name = merchant_name(group["authorizer"])
        if group["eligible"]:
            targets.append(
                Target(
                    label=name,
                    effects=[gettext("To delete: %(accounts)s") % {"accounts": _accounts(group["eligible"])}],
                )
            )
        if group["not_eligible"]:
            why = gettext("not deleted: the merchant is not eligible — %(why)s") % {
                "why": group["verdict"].summary_text
            }
            skipped.append((f"{name}: {_accounts(group['not_eligible'])}", why))
        if group["gone"]:
            skipped.append(
                (
                    f"{name}: {_accounts(group['gone'])}",
                    gettext("not deleted, already gone from WeChat at the last sync"),
                )
            )
        if group["active"]:
            skipped.append(
                (
                    f"{name}: {_accounts(group['active'])}",
                    gettext("not requested again, a deletion is already pending or running"),
                )
            )
    return Consequences(
        title=gettext("Delete kf accounts on WeChat?"),
        summary=gettext("%(eligible)d of the %(selected)d selected kf accounts will be deleted on WeChat.")
        % {"eligible": eligible, "selected": queryset.count()},
        targets=targets,
        skipped=skipped,
        undo=gettext("No: WeChat removes the customer-service account for good."),
        confirm_label=ngettext("Yes, delete %(n)d kf account", "Yes, delete %(n)d kf accounts", eligible)
        % {"n": eligible},
    )


def retry_consequences(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Consequences:
    targets, skipped = [], []
    for deletion in queryset.select_related("authorizer"):
        label = f"#{deletion.pk} {deletion.kf_account} — {merchant_name(deletion.authorizer)}"
        if deletion.status != DeletionStatus.FAILED:
            skipped.append(
                (
                    label,
                    gettext("it is %(status)s; only a failed deletion can be retried")
                    % {"status": deletion.get_status_display()},
                )
            )
            continue
        verdict = eligibility(deletion.authorizer)
        if not verdict.eligible:
            skipped.append((label, gettext("not retried: %(why)s") % {"why": verdict.summary_text}))
            continue
        effects = [
            gettext("it failed with: %(reason)s") % {"reason": deletion.get_reason_display() or "—"},
            gettext("sent to WeChat again now; if WeChat accepts, the account is deleted for good"),
        ]
        hint = failure_hint(deletion.reason)
        if hint:
            effects.append(gettext("before retrying: %(hint)s") % {"hint": hint})
        targets.append(Target(label=label, effects=effects, url=admin_url(deletion)))
    count = len(targets)
    return Consequences(
        title=gettext("Retry failed deletions?"),
        summary=ngettext(
            "%(n)d failed deletion will be sent to WeChat again.",
            "%(n)d failed deletions will be sent to WeChat again.",
            count,
        )
        % {"n": count},
        targets=targets,
        skipped=skipped,
        undo=gettext(
            "Only partly: a retried deletion can be cancelled while it is still pending; "
            "once WeChat has deleted the account it cannot be brought back."
        ),
        confirm_label=ngettext("Yes, retry %(n)d deletion", "Yes, retry %(n)d deletions", count) % {"n": count},
    )


def deletion_plan(kf_accounts: QuerySet) -> list[dict[str, Any]]:
    """Per merchant: which selected accounts would be deleted, and why the others would not."""
    by_merchant: dict[int, list[KfAccount]] = defaultdict(list)
    authorizers: dict[int, Authorizer] = {}
    for kf in kf_accounts:
        by_merchant[kf.authorizer_id].append(kf)
        authorizers[kf.authorizer_id] = kf.authorizer
    plan = []
    for authorizer_id, rows in by_merchant.items():
        authorizer = authorizers[authorizer_id]
        verdict = eligibility(authorizer)
        active = set(
            DeletionRequest.objects.filter(
                authorizer_id=authorizer_id, kf_account__in=[r.kf_account for r in rows], status__in=ACTIVE_STATUSES
            ).values_list("kf_account", flat=True)
        )
        group: dict[str, Any] = {
            "authorizer": authorizer,
            "verdict": verdict,
            "eligible": [],
            "gone": [],
            "active": [],
            "not_eligible": [],
        }
        for kf in rows:
            if not verdict.eligible:
                group["not_eligible"].append(kf)
            elif kf.gone_at is not None:
                group["gone"].append(kf)
            elif kf.kf_account in active:
                group["active"].append(kf)
            else:
                group["eligible"].append(kf)
        plan.append(group)
    return plan


# WeChat's invite_status values (getkflist), in the staff's language.
INVITE_STATUSES = {"waiting": _("waiting"), "rejected": _("rejected"), "expired": _("expired")}


@admin.register(KfAccount)
class KfAccountAdmin(ByPlatformAdmin, BigTableAdmin, ObjectActionsAdmin):
    list_display = ("kf_account", "merchant", "kf_nick", "kf_wx", "invite", "last_seen_at", "gone_at")
    list_filter = (
        ("authorizer", MerchantListFilter),
        PresentFilter,
        ("invite_status", fixed_values_filter(INVITE_STATUSES)),
    )
    search_fields = ("kf_account", "kf_nick", "kf_wx", "authorizer__appid", "authorizer__nickname")
    list_select_related = ("authorizer",)
    list_per_page = 100
    fields = (
        "authorizer",
        "kf_account",
        "kf_id",
        "kf_nick",
        "kf_wx",
        "invite_wx",
        "invite_expire_time",
        "invite",
        "first_seen_at",
        "last_seen_at",
        "gone_at",
        "deletions",
    )
    readonly_fields = fields
    actions = ["delete_selected_kf_accounts"]
    object_actions = ("delete_selected_kf_accounts",)
    object_action_labels = {"delete_selected_kf_accounts": _("Delete on WeChat…")}

    def object_action_applies(self, name: str, obj: Any) -> bool:
        return obj.gone_at is None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the mirror is written by sync only

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Every term narrows (as Django's search does), each through an index: an appid exactly; any
        other text as a substring of the account, its nickname or WeChat id (trigram indexes on
        PostgreSQL) or of the merchant's nickname (the merchants found first, at most 1,000)."""
        for term in search_term.split():
            exact = appid_search(term, "authorizer__appid")
            if exact is not None:
                queryset = queryset.filter(exact)
                continue
            named = list(
                Authorizer.objects.filter(nickname__icontains=term).order_by().values_list("pk", flat=True)[:1000]
            )
            queryset = queryset.filter(
                Q(kf_account__icontains=term)
                | Q(kf_nick__icontains=term)
                | Q(kf_wx__icontains=term)
                | Q(authorizer_id__in=named)
            )
        return queryset, False

    has_request_deletion_permission = holds("kfaccounts.request_deletion")

    @admin.display(description=_("invite status"), ordering="invite_status")
    def invite(self, obj: KfAccount) -> str:
        return str(INVITE_STATUSES.get(obj.invite_status, obj.invite_status)) or "—"

    @admin.display(description=_("merchant"), ordering="authorizer__nickname")
    def merchant(self, obj: KfAccount) -> str:
        return _merchant_cell(obj.authorizer)

    @admin.display(description=_("deletions"))
    def deletions(self, obj: KfAccount) -> str:
        rows = DeletionRequest.objects.filter(authorizer_id=obj.authorizer_id, kf_account=obj.kf_account)[:20]
        if not rows:
            return "—"
        return inline_table(
            (admin_link(d, f"#{d.pk}"), d.get_status_display(), reason_with_hint(d), local_time(d.created_at))
            for d in rows
        )

    @console_action(description=_("Delete the selected kf accounts on WeChat…"), permissions=["request_deletion"])
    @confirmed(consequences=deletion_consequences, danger=True)
    def delete_selected_kf_accounts(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        plan = deletion_plan(queryset.select_related("authorizer"))
        actor = staff_actor(request)
        for group in plan:
            authorizer = group["authorizer"]
            accounts = [kf.kf_account for kf in group["eligible"]]
            if not accounts:
                continue
            try:
                deletions = services.deletions_request(authorizer=authorizer, kf_accounts=accounts, actor=actor)
            except (NotEligible, MalformedKfAccount) as exc:
                self.message_user(request, f"{merchant_name(authorizer)}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{merchant_name(authorizer)}: "
                + gettext("%(count)d deletions requested (%(ids)s)")
                % {"count": len(deletions), "ids": ", ".join(f"#{d.pk}" for d in deletions)},
                messages.SUCCESS,
            )
        return None


# The request's audit line and the row's created_at come from two clock readings in one request.
HISTORY_CLOCK_MARGIN = timedelta(minutes=5)


class ReasonOrBlank(admin.SimpleListFilter):
    title = _("reason")
    parameter_name = "reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        from kfaccounts.models import DeletionReason

        return [("-", _("(none)")), *DeletionReason.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "-":
            return queryset.filter(reason="")
        if self.value():
            return queryset.filter(reason=self.value())
        return None


@admin.register(DeletionRequest)
class DeletionRequestAdmin(ByPlatformAdmin, BigTableAdmin, ObjectActionsAdmin):
    list_display = (
        "number",
        "kf_account",
        "merchant",
        "status",
        "reason_shown",
        "errcode",
        "attempts",
        "created_at",
        "when",
    )
    list_display_links = ("number", "kf_account")
    # No date_hierarchy: its year/month links cost a DISTINCT over every row; the date filter does not.
    list_filter = ("status", ReasonOrBlank, ("authorizer", MerchantListFilter), "created_at")
    search_fields = ("kf_account", "authorizer__appid", "authorizer__nickname", "rid")
    list_select_related = ("authorizer",)
    list_per_page = 100
    fieldsets = (
        (None, {"fields": ("authorizer", "kf_account", "status", "reason_shown", "errcode", "errmsg", "rid")}),
        (
            _("Attempts"),
            {
                "fields": (
                    "attempts",
                    "transient_failures",
                    "outcome_unknown",
                    "next_attempt",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "requested_by",
                )
            },
        ),
        (_("Audit events of this deletion"), {"fields": ("history",)}),
    )
    readonly_fields = (
        "authorizer",
        "kf_account",
        "status",
        "reason_shown",
        "errcode",
        "errmsg",
        "rid",
        "attempts",
        "transient_failures",
        "outcome_unknown",
        "next_attempt",
        "created_at",
        "started_at",
        "finished_at",
        "requested_by",
        "history",
    )
    actions = ["retry_failed", "cancel_pending"]
    object_actions = ("retry_failed", "cancel_pending")
    object_action_labels = {"retry_failed": _("Retry this deletion…"), "cancel_pending": _("Cancel this deletion")}

    def object_action_applies(self, name: str, obj: Any) -> bool:
        wanted = {"retry_failed": DeletionStatus.FAILED, "cancel_pending": DeletionStatus.PENDING}
        return obj.status == wanted.get(name, obj.status)

    has_operate_permission = holds("kfaccounts.operate_deletionrequest")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        exact = appid_search(search_term.strip(), "authorizer__appid")
        if exact is not None:  # a merchant's deletions: through the merchant's unique appid, no scan
            return queryset.filter(exact), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requested from the kf accounts list, the API, the command line or a schedule

    @admin.display(description=_("reason"), ordering="reason")
    def reason_shown(self, obj: DeletionRequest) -> str:
        return reason_with_hint(obj)

    @admin.display(description="#", ordering="id")
    def number(self, obj: DeletionRequest) -> str:
        return f"#{obj.pk}"

    @admin.display(description=_("merchant"), ordering="authorizer__nickname")
    def merchant(self, obj: DeletionRequest) -> str:
        return _merchant_cell(obj.authorizer)

    @admin.display(description=_("next attempt / finished"))
    def when(self, obj: DeletionRequest) -> str:
        if obj.is_terminal:
            return local_time(obj.finished_at)
        return self.next_attempt(obj)

    @admin.display(description=_("next attempt"))
    def next_attempt(self, obj: DeletionRequest) -> str:
        if obj.is_terminal:
            return "—"
        if obj.status == DeletionStatus.RUNNING:
            return gettext("running now (lease until %(at)s)") % {"at": local_time(obj.lease_expires_at)}
        if obj.next_attempt_at is None or obj.next_attempt_at <= timezone.now():
            return gettext("as soon as a worker is free")
        return local_time(obj.next_attempt_at)

    @admin.display(description=_("requested by"))
    def requested_by(self, obj: DeletionRequest) -> str:
        return f"{obj.requested_by_kind}: {obj.requested_by_label or obj.requested_by_id}"

    @admin.display(description=_("audit events"))
    def history(self, obj: DeletionRequest) -> str:
        # Through the merchant's (appid, time) index from the deletion's creation on: the log has
        # millions of lines and the JSON key alone has no index (every deletion line carries the appid).
        events = AuditEvent.objects.filter(
            authorizer_appid=obj.authorizer.appid,
            at__gte=obj.created_at - HISTORY_CLOCK_MARGIN,
            detail__deletion_id=obj.pk,
        ).order_by("at", "id")
        if not events:
            return "—"
        return inline_table(
            (
                (
                    admin_link(e, local_time(e.at)),
                    e.action,
                    e.detail.get("attempt", "—"),
                    e.outcome,
                    f"{e.errcode} {e.errmsg}" if e.errcode is not None else e.errmsg or "—",
                    f"{e.actor_kind}: {e.actor_label}",
                )
                for e in events
            ),
            headers=(
                gettext("time"),
                gettext("event"),
                gettext("attempt"),
                gettext("outcome"),
                gettext("errcode / errmsg"),
                gettext("actor"),
            ),
        )

    @console_action(description=_("Retry the selected failed deletions…"), permissions=["operate"])
    @confirmed(consequences=retry_consequences)
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        for deletion in queryset.select_related("authorizer"):
            name = f"{merchant_name(deletion.authorizer)} {deletion.kf_account}"
            try:
                services.deletion_retry(deletion=deletion, actor=staff_actor(request))
            except NotEligible as exc:
                self.message_user(
                    request,
                    f"{name}: " + gettext("not retried: %(why)s") % {"why": exc.verdict.summary_text},
                    messages.ERROR,
                )
            except services.DeletionNotRetryable:
                deletion.refresh_from_db()
                why = (
                    gettext("another deletion of this account is already pending or running")
                    if deletion.status == DeletionStatus.FAILED
                    else gettext("it is %(status)s; only a failed deletion can be retried")
                    % {"status": deletion.get_status_display()}
                )
                self.message_user(
                    request,
                    f"{name}: " + gettext("deletion #%(id)d not retried: ") % {"id": deletion.pk} + why,
                    messages.ERROR,
                )
            else:
                self.message_user(request, f"{name}: " + gettext("deletion #%(id)d sent again") % {"id": deletion.pk})

    @console_action(description=_("Cancel the selected pending deletions"), permissions=["operate"])
    def cancel_pending(self, request: HttpRequest, queryset: QuerySet) -> None:
        for deletion in queryset.select_related("authorizer"):
            name = f"{merchant_name(deletion.authorizer)} {deletion.kf_account}"
            try:
                services.deletion_cancel(deletion=deletion, actor=staff_actor(request))
            except services.DeletionNotCancellable:
                self.message_user(
                    request,
                    f"{name}: "
                    + gettext(
                        "deletion #%(id)d not cancelled: it is %(status)s; only a pending deletion can be cancelled"
                    )
                    % {"id": deletion.pk, "status": deletion.get_status_display()},
                    messages.ERROR,
                )
            else:
                self.message_user(request, f"{name}: " + gettext("deletion #%(id)d cancelled") % {"id": deletion.pk})
