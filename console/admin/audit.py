"""The audit log: read-only, searchable, each line linked to what it is about."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from authorizers.models import ApiKey, Authorizer
from console.admin.bigtables import BigTableAdmin, IndexedValuesFilter, appid_search
from console.admin.helpers import ReadOnlyAdmin, changelist_link, json_shown
from kfaccounts.models import KfAccount


@admin.register(AuditEvent)
class AuditEventAdmin(BigTableAdmin, ReadOnlyAdmin):
    list_display = ("at", "actor", "merchant", "action", "subject_link", "outcome", "errcode")
    # No date_hierarchy: its links cost a DISTINCT over millions of lines; the date filter does not.
    list_filter = (("action", IndexedValuesFilter), "actor_kind", ("outcome", IndexedValuesFilter), "at")
    search_fields = ("authorizer_appid", "subject", "rid", "actor_label", "errmsg", "action")
    list_per_page = 100
    fields = (
        "at",
        "actor_kind",
        "actor_id",
        "actor_label",
        "merchant",
        "action",
        "subject_link",
        "outcome",
        "errcode",
        "errmsg",
        "rid",
        "detail_shown",
    )
    readonly_fields = fields

    @admin.display(description=_("detail"))
    def detail_shown(self, obj: AuditEvent) -> str:
        return json_shown(obj.detail)

    @admin.display(description=_("actor"), ordering="actor_label")
    def actor(self, obj: AuditEvent) -> str:
        return f"{obj.get_actor_kind_display()}: {obj.actor_label}"

    # Links are built from the event's own fields (no query per row): the log outlives the rows it
    # names, so a link may lead to a list that no longer holds the row.

    @admin.display(description=_("merchant"), ordering="authorizer_appid")
    def merchant(self, obj: AuditEvent) -> str:
        if not obj.authorizer_appid:
            return "—"
        return changelist_link(Authorizer, obj.authorizer_appid, appid=obj.authorizer_appid)

    @admin.display(description=_("subject"), ordering="subject")
    def subject_link(self, obj: AuditEvent) -> str:
        deletion_id = (obj.detail or {}).get("deletion_id")
        if isinstance(deletion_id, int):
            url = reverse("admin:kfaccounts_deletionrequest_change", args=[deletion_id])
            return format_html('<a href="{}">{} (#{})</a>', url, obj.subject, deletion_id)
        if obj.action.startswith("api_key.") and obj.subject:
            return changelist_link(ApiKey, f"{obj.subject}…", prefix=obj.subject)
        if obj.action.startswith("kf_accounts.") and obj.authorizer_appid:
            return changelist_link(KfAccount, _("kf accounts"), authorizer__appid=obj.authorizer_appid)
        return obj.subject or "—"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """A merchant's appid (the common search) is an exact look-up on the indexed column; any other
        text is Django's substring search over the fields above (a scan of the log: narrow it by
        action or date first)."""
        exact = appid_search(search_term.strip(), "authorizer_appid")
        if exact is not None:
            return queryset.filter(exact), False
        return super().get_search_results(request, queryset, search_term)
