"""The audit log: read-only, searchable, each line linked to what it is about."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from authorizers.models import ApiKey, Authorizer
from console.admin.helpers import ReadOnlyAdmin, admin_link, changelist_link
from kfaccounts.models import DeletionRequest


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "merchant", "action", "subject_link", "outcome", "errcode")
    list_filter = ("action", "actor_kind", "outcome")
    search_fields = ("authorizer_appid", "subject", "rid", "actor_label", "errmsg", "action")
    date_hierarchy = "at"
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
        "detail",
    )
    readonly_fields = fields

    @admin.display(description=_("actor"), ordering="actor_label")
    def actor(self, obj: AuditEvent) -> str:
        return f"{obj.get_actor_kind_display()}: {obj.actor_label}"

    @admin.display(description=_("merchant"), ordering="authorizer_appid")
    def merchant(self, obj: AuditEvent) -> str:
        if not obj.authorizer_appid:
            return "—"
        authorizer = Authorizer.objects.filter(appid=obj.authorizer_appid).first()
        return admin_link(authorizer, obj.authorizer_appid) if authorizer else obj.authorizer_appid

    @admin.display(description=_("subject"), ordering="subject")
    def subject_link(self, obj: AuditEvent) -> str:
        deletion_id = (obj.detail or {}).get("deletion_id")
        if isinstance(deletion_id, int):
            deletion = DeletionRequest.objects.filter(pk=deletion_id).first()
            if deletion is not None:
                return admin_link(deletion, f"{obj.subject} (#{deletion_id})")
        if obj.action.startswith("api_key.") and obj.subject:
            key = ApiKey.objects.filter(prefix=obj.subject).first()
            if key is not None:
                return admin_link(key, f"{obj.subject}…")
        if obj.action.startswith("kf_accounts.") and obj.authorizer_appid:
            from kfaccounts.models import KfAccount

            return changelist_link(KfAccount, _("kf accounts"), authorizer__appid=obj.authorizer_appid)
        return obj.subject or "—"
