"""Merchant webhook endpoints and their delivery log.

An endpoint's URL decides where a merchant's events (and their signatures) go, and its signing secret
is as powerful as an API key: registering, redirecting (changing the URL or the event types) and
rotating the secret need ``webhooks.manage_webhook_endpoints`` (superusers have it; the operator
role does not). Operators may ping or disable an endpoint and retry a delivery; viewers see
everything read-only. A secret is shown on the page that answers the registration or rotation, once
(never through a message, which would sit in a cookie), with no-store; its ciphertext is never shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.admin.helpers import (
    ByPlatformAdmin,
    NoDeleteAdmin,
    ReadOnlyAdmin,
    console_action,
    merchant_name,
    staff_actor,
)
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SECRET_FIELDS = ("secret_ciphertext", "previous_secret_ciphertext")
MANAGE = "webhooks.manage_webhook_endpoints"
OPERATE = "webhooks.change_webhookendpoint"


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(max_length=500, help_text=_("https, a public address (checked again before every delivery)"))
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in services.SUBSCRIBABLE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("event types"),
        help_text=_("none ticked: every event type"),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["authorizer", "url", "description", "event_types", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services.webhook_url_check(url)
        except services.InvalidWebhook as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ByPlatformAdmin, NoDeleteAdmin):
    form = WebhookEndpointForm
    list_display = ("id", "merchant", "url", "is_active", "subscribed", "created_at", "disabled_at")
    list_filter = ("is_active",)
    search_fields = ("url", "authorizer__appid", "authorizer__nickname")
    exclude = SECRET_FIELDS
    actions = ["rotate_secret", "send_ping", "disable"]

    # Where events go is the manage permission's: without it the change page is read-only (Django
    # shows it so to anyone with the view permission) and a POST to it or to "add" is refused.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(MANAGE)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Ping and disable: the operator role (Django's change permission on the model)."""
        return request.user.has_perm(OPERATE)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("created_at", "secret_rotated_at", "previous_secret_expires_at", "disabled_at")
        return ("authorizer", *fixed) if obj is not None else fixed

    @admin.display(description=_("merchant"), ordering="authorizer__nickname")
    def merchant(self, obj: WebhookEndpoint) -> str:
        return merchant_name(obj.authorizer)

    @admin.display(description=_("events"))
    def subscribed(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) or str(_("all"))

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied  # has_*_permission already refused the view; never save without it
        actor = staff_actor(request)
        data = form.cleaned_data
        if change:
            services.webhook_endpoint_update(
                endpoint=WebhookEndpoint.objects.select_related("authorizer").get(pk=obj.pk),
                actor=actor,
                url=data["url"],
                event_types=list(data.get("event_types") or []),
                description=data.get("description", ""),
                is_active=data.get("is_active", True),
            )
            obj.refresh_from_db()
            return
        endpoint, secret = services.webhook_endpoint_register(
            authorizer=data["authorizer"],
            url=data["url"],
            actor=actor,
            event_types=list(data.get("event_types") or []),
            description=data.get("description", ""),
        )
        obj.pk = endpoint.pk
        obj.refresh_from_db()
        request._webhook_secret = (endpoint, secret)  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        shown = getattr(request, "_webhook_secret", None)
        if shown is None:
            return super().response_add(request, obj, post_url_continue)
        return self._secret_page(request, [shown])

    def _secret_page(self, request: HttpRequest, shown: list[tuple[WebhookEndpoint, str]]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Webhook signing secret"),
            "shown": shown,
        }
        response = TemplateResponse(request, "console/webhook_secret_shown.html", context)
        response["Cache-Control"] = "no-store"  # the page holds a secret shown once: no copy in any cache
        return response

    @console_action(description=_("Rotate the signing secret (shown once)"), permissions=["manage"])
    def rotate_secret(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        shown = []
        for endpoint in queryset.select_related("authorizer"):
            try:
                shown.append(
                    (endpoint, services.webhook_endpoint_secret_rotate(endpoint=endpoint, actor=staff_actor(request)))
                )
            except services.InvalidWebhook as exc:
                self.message_user(request, f"{merchant_name(endpoint.authorizer)}: {exc}", messages.ERROR)
        return self._secret_page(request, shown) if shown else None

    @console_action(description=_("Send a test event (ping)"), permissions=["operate"])
    def send_ping(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset.select_related("authorizer"):
            try:
                delivery = services.webhook_ping(endpoint=endpoint, actor=staff_actor(request))
            except services.InvalidWebhook as exc:
                self.message_user(request, f"{merchant_name(endpoint.authorizer)}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("%(merchant)s: ping queued (delivery #%(id)d)")
                    % {"merchant": merchant_name(endpoint.authorizer), "id": delivery.pk},
                )

    @console_action(description=_("Disable (stop sending; the log stays)"), permissions=["operate"])
    def disable(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset.select_related("authorizer"):
            services.webhook_endpoint_disable(endpoint=endpoint, actor=staff_actor(request))
        self.message_user(request, _("disabled"))


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ByPlatformAdmin, ReadOnlyAdmin):
    platform_path = "endpoint__authorizer__platform"
    list_display = ("id", "endpoint", "event_type", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event_type")
    search_fields = ("event_id", "endpoint__url", "endpoint__authorizer__appid")
    inlines = [WebhookAttemptInline]
    actions = ["retry_now"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @console_action(description=_("Try the selected failed deliveries again"), permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        for delivery in queryset.select_related("endpoint__authorizer"):
            if services.webhook_delivery_retry(delivery=delivery, actor=staff_actor(request)):
                self.message_user(request, gettext("delivery #%(id)d: queued again") % {"id": delivery.pk})
            else:
                self.message_user(
                    request,
                    gettext("delivery #%(id)d (%(merchant)s): only a failed delivery can be retried")
                    % {"id": delivery.pk, "merchant": merchant_name(delivery.endpoint.authorizer)},
                    messages.WARNING,
                )
