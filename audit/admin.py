from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_kind", "actor_label", "authorizer_appid", "action", "subject", "outcome", "errcode")
    list_filter = ("action", "actor_kind", "outcome")
    search_fields = ("authorizer_appid", "subject", "rid")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    # Append-only: nobody edits or deletes history from the UI.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
