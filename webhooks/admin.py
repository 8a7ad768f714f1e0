"""Staff views of merchant webhook endpoints and their delivery log.

Registering or rotating shows the signing secret on the page that answers the request, once (never
through a message, which would sit in a cookie); the secret's ciphertext is never shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.services import Actor
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SECRET_FIELDS = ("secret_ciphertext", "previous_secret_ciphertext")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(max_length=500, help_text=_("https, a public address (checked again before every delivery)"))
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in services.SUBSCRIBABLE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("none ticked: every event type"),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["authorizer", "url", "description", "event_types", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services._checked_url(url)
        except services.InvalidWebhook as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("id", "authorizer", "url", "is_active", "subscribed", "created_at", "disabled_at")
    list_filter = ("is_active",)
    search_fields = ("url", "authorizer__appid", "authorizer__nickname")
    exclude = SECRET_FIELDS
    actions = ["rotate_secret", "send_ping", "disable"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("created_at", "secret_rotated_at", "previous_secret_expires_at", "disabled_at")
        return ("authorizer", *fixed) if obj is not None else fixed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: the delivery log stays

    @admin.display(description=_("events"))
    def subscribed(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) or str(_("all"))

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        actor = Actor.staff(request.user)
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
        return TemplateResponse(request, "admin/webhooks/secret_shown.html", context)

    @admin.action(description=_("Rotate the signing secret (shown once)"), permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        shown = []
        for endpoint in queryset.select_related("authorizer"):
            try:
                shown.append(
                    (
                        endpoint,
                        services.webhook_endpoint_secret_rotate(endpoint=endpoint, actor=Actor.staff(request.user)),
                    )
                )
            except services.InvalidWebhook as exc:
                self.message_user(request, f"{endpoint.authorizer}: {exc}", messages.ERROR)
        return self._secret_page(request, shown) if shown else None

    @admin.action(description=_("Send a test event (ping)"), permissions=["change"])
    def send_ping(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset.select_related("authorizer"):
            try:
                delivery = services.webhook_ping(endpoint=endpoint, actor=Actor.staff(request.user))
            except services.InvalidWebhook as exc:
                self.message_user(request, f"{endpoint.authorizer}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("%(merchant)s: ping queued (delivery #%(id)d)")
                    % {"merchant": endpoint.authorizer, "id": delivery.pk},
                )

    @admin.action(description=_("Disable (stop sending; the log stays)"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset.select_related("authorizer"):
            services.webhook_endpoint_disable(endpoint=endpoint, actor=Actor.staff(request.user))
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
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "endpoint", "event_type", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event_type")
    search_fields = ("event_id", "endpoint__url", "endpoint__authorizer__appid")
    inlines = [WebhookAttemptInline]
    actions = ["retry_now"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Try the selected failed deliveries again"), permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        for delivery in queryset.select_related("endpoint__authorizer"):
            if services.webhook_delivery_retry(delivery=delivery, actor=Actor.staff(request.user)):
                self.message_user(request, gettext("delivery #%(id)d: queued again") % {"id": delivery.pk})
            else:
                self.message_user(
                    request,
                    gettext("delivery #%(id)d (%(merchant)s): only a failed delivery can be retried")
                    % {"id": delivery.pk, "merchant": delivery.endpoint.authorizer},
                    messages.WARNING,
                )
