"""Staff views of merchants. Ciphertext fields are never shown; token health is shown instead."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from audit.services import Actor
from authorizers import services
from authorizers.models import ApiKey, Authorizer, ComponentCredential, ComponentEvent
from authorizers.policy import eligibility
from authorizers.tokens import AuthorizerRevokedError, authorizer_token_get
from wechat.errors import WeChatError

SECRET_FIELDS = (
    "refresh_token_ciphertext",
    "access_token_ciphertext",
    "verify_ticket_ciphertext",
    "authorization_code_ciphertext",
    "digest",
)


@admin.register(Authorizer)
class AuthorizerAdmin(admin.ModelAdmin):
    list_display = ("nickname", "appid", "kind", "certified", "granted", "status", "eligible", "token_health")
    list_filter = ("status", "kind")
    search_fields = ("appid", "nickname", "alias")
    exclude = ("refresh_token_ciphertext", "access_token_ciphertext")
    readonly_fields = [f.name for f in Authorizer._meta.fields if f.name not in SECRET_FIELDS] + ["eligibility_reasons"]
    actions = ["refresh_token_now", "reread_permissions"]

    def has_add_permission(self, request) -> bool:
        return False  # merchants arrive through the authorization flow only

    @admin.display(boolean=True)
    def certified(self, obj: Authorizer) -> bool:
        return obj.is_certified

    @admin.display(description="permission sets")
    def granted(self, obj: Authorizer) -> str:
        return ", ".join(map(str, obj.func_ids or [])) or "—"

    @admin.display(boolean=True)
    def eligible(self, obj: Authorizer) -> bool:
        return eligibility(obj).eligible

    @admin.display(description="why not eligible")
    def eligibility_reasons(self, obj: Authorizer) -> str:
        return eligibility(obj).summary

    @admin.display(description="access token")
    def token_health(self, obj: Authorizer) -> str:
        if not obj.access_token_expires_at:
            return "none"
        remaining = (obj.access_token_expires_at - timezone.now()).total_seconds()
        return f"valid {int(remaining // 60)} min" if remaining > 0 else "expired"

    @admin.action(description="Refresh access token now")
    def refresh_token_now(self, request, queryset) -> None:
        for authorizer in queryset:
            try:
                authorizer_token_get(authorizer_id=authorizer.pk, force=True)
            except (WeChatError, AuthorizerRevokedError) as exc:
                self.message_user(request, f"{authorizer}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{authorizer}: token refreshed")

    @admin.action(description="Re-read account info and permissions")
    def reread_permissions(self, request, queryset) -> None:
        for authorizer in queryset:
            try:
                services.authorizer_info_refresh(authorizer_id=authorizer.pk, actor=Actor.staff(request.user))
            except WeChatError as exc:
                self.message_user(request, f"{authorizer}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{authorizer}: re-read")


@admin.register(ComponentCredential)
class ComponentCredentialAdmin(admin.ModelAdmin):
    list_display = (
        "component_appid",
        "ticket_received_at",
        "ticket_created_at",
        "access_token_expires_at",
        "refresh_count",
    )
    exclude = ("verify_ticket_ciphertext", "access_token_ciphertext")
    readonly_fields = (
        "component_appid",
        "ticket_created_at",
        "ticket_received_at",
        "access_token_expires_at",
        "access_token_refreshed_at",
        "refresh_count",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ComponentEvent)
class ComponentEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "info_type", "authorizer_appid", "create_time", "state")
    list_filter = ("info_type", "state")
    search_fields = ("authorizer_appid",)
    exclude = ("authorization_code_ciphertext", "dedupe_key")
    readonly_fields = (
        "info_type",
        "authorizer_appid",
        "create_time",
        "received_at",
        "state",
        "processed_at",
        "error",
        "fields",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "authorizer", "name", "created_at", "last_used_at", "revoked_at")
    exclude = ("digest",)
    readonly_fields = ("authorizer", "prefix", "created_at", "last_used_at", "revoked_at")

    def has_add_permission(self, request) -> bool:
        return False  # issued by `manage.py issue_api_key` or the authorizer page, shown once
