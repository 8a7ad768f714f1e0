"""The platforms served (issue 19): superusers add them, rename them, store a reset secret or a new
message token, rotate the AES key and retire them; everyone else sees them read-only.

Secrets are write-only: the form's secret fields are empty password inputs, an empty one keeps what
is stored, and nothing stored is ever rendered (no ciphertext either). The default platform is the
environment's: its row is read-only here and its credentials change in the environment.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from authorizers import platforms as platform_services
from authorizers.models import AuthorizerStatus, ComponentCredential, Platform, PlatformStatus
from console.admin.base import ObjectActionsAdmin
from console.admin.confirm import Consequences, Target, confirmed
from console.admin.helpers import admin_url, console_action, local_time, staff_actor

SECRET_FIELDS = ("appsecret_ciphertext", "token_ciphertext", "aes_key_ciphertext", "previous_aes_key_ciphertext")


def _secret(label: Any, help_text: Any, *, required: bool) -> forms.CharField:
    # render_value=False: a stored or typed secret is never sent back to the browser.
    return forms.CharField(
        label=label,
        help_text=help_text,
        required=required,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


def _checked(form: forms.ModelForm, **values: Any) -> None:
    """The service's own checks, so a refusal sits beside its field (the service checks again)."""
    try:
        platform_services.platform_check(**values)
    except platform_services.PlatformError as exc:
        field = next((name for name in exc.fields if name in form.fields), None)
        form.add_error(field, exc.message)


class PlatformAddForm(forms.ModelForm):
    appsecret = _secret(_("AppSecret"), _("shown never again after saving"), required=True)
    token = _secret(_("message token"), _("3 to 32 letters or digits, as in the WeChat Open Platform"), required=True)
    aes_key = _secret(_("EncodingAESKey"), _("43 letters or digits"), required=True)

    class Meta:
        model = Platform
        fields = ["name", "component_appid"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        values = {
            name: data[name] for name in ("name", "component_appid", "appsecret", "token", "aes_key") if data.get(name)
        }
        _checked(self, **values)
        return data


class PlatformChangeForm(forms.ModelForm):
    appsecret = _secret(_("new AppSecret"), _("empty: keep the stored one (after a reset on WeChat)"), required=False)
    token = _secret(_("new message token"), _("empty: keep the stored one"), required=False)
    aes_key = _secret(
        _("new EncodingAESKey"),
        _("empty: keep the stored one; a new one becomes current and the replaced one is still read"),
        required=False,
    )

    class Meta:
        model = Platform
        fields = ["name"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _checked(self, **{name: data[name] for name in ("name", "appsecret", "token", "aes_key") if data.get(name)})
        return data


def _paths(platform: Platform) -> tuple[str, str, str]:
    """Its events URL, authorization page and callback: the default platform's are the paths it has
    always had (which WeChat's settings name); another's are under /wechat/platforms/<appid>/."""
    if platform.from_environment:
        return (reverse("wechat-component-events"), reverse("wechat-authorize"), reverse("wechat-authorize-callback"))
    appid = platform.component_appid
    return (
        reverse("wechat-platform-events", args=[appid]),
        reverse("wechat-platform-authorize", args=[appid]),
        reverse("wechat-platform-authorize-callback", args=[appid]),
    )


def retire_consequences(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Consequences:
    targets, skipped = [], []
    for platform in queryset:
        if platform.from_environment:
            skipped.append((str(platform), gettext("the default platform is configured in the environment")))
            continue
        if not platform.is_active:
            skipped.append((str(platform), gettext("retired already")))
            continue
        merchants = platform.authorizers.exclude(status=AuthorizerStatus.DEACTIVATED).count()
        targets.append(
            Target(
                label=str(platform),
                effects=[
                    gettext("its events URL and authorization page refuse everything from now on"),
                    ngettext(
                        "%(n)d merchant deactivated (API keys revoked, pending deletions cancelled)",
                        "%(n)d merchants deactivated (API keys revoked, pending deletions cancelled)",
                        merchants,
                    )
                    % {"n": merchants},
                ],
                url=admin_url(platform),
            )
        )
    count = len(targets)
    return Consequences(
        title=gettext("Retire platforms?"),
        summary=ngettext("%(n)d platform will be retired.", "%(n)d platforms will be retired.", count) % {"n": count},
        targets=targets,
        skipped=skipped,
        undo=gettext(
            "No. A retired platform is not served again; its merchants, deletions and audit trail stay. To serve "
            "it again, add it under a new name once WeChat's side is ready, and have its merchants authorize again."
        ),
        confirm_label=ngettext("Yes, retire %(n)d platform", "Yes, retire %(n)d platforms", count) % {"n": count},
    )


@admin.register(Platform)
class PlatformAdmin(ObjectActionsAdmin):
    list_display = ("name", "component_appid", "default", "status", "merchants", "ticket", "events_url")
    list_filter = ("status",)
    search_fields = ("name", "component_appid")
    exclude = SECRET_FIELDS
    actions = ["retire"]
    object_actions = ("retire",)
    object_action_labels = {"retire": _("Retire…")}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Platform]:
        platform_services.platform_default()  # the environment's platform is listed from the first visit
        active = Q(authorizers__status=AuthorizerStatus.ACTIVE)
        return super().get_queryset(request).annotate(merchant_count=Count("authorizers", filter=active))

    # Superusers only (console/roles.py keeps this model out of every role but viewing): a platform's
    # secret is the power to act for every merchant that authorized it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and (obj is None or (obj.is_active and not obj.from_environment))

    def has_retire_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    editable_form = True  # the add form and a superuser's change form save (through the services)

    def object_action_applies(self, name: str, obj: Any) -> bool:
        return obj.is_active and not obj.from_environment

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = PlatformChangeForm if obj is not None else PlatformAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "component_appid", "appsecret", "token", "aes_key"]
        shown = ["name", "component_appid", "default", "status", "platform_urls", "credential_health", "key_rotated_at"]
        if self.has_change_permission(request, obj):
            shown += ["appsecret", "token", "aes_key"]
        return [*shown, "retired_at", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        fixed = (
            "component_appid",
            "default",
            "status",
            "platform_urls",
            "credential_health",
            "key_rotated_at",
            "retired_at",
        )
        return (*fixed, "created_at") if self.has_change_permission(request, obj) else (*fixed, "created_at", "name")

    # --- columns ---------------------------------------------------------------------------

    @admin.display(boolean=True, description=_("default"))
    def default(self, obj: Platform) -> bool:
        return obj.from_environment

    @admin.display(description=_("active merchants"), ordering="merchant_count")
    def merchants(self, obj: Platform) -> int:
        return getattr(obj, "merchant_count", 0)

    @admin.display(description=_("last verify ticket"))
    def ticket(self, obj: Platform) -> str:
        credential = ComponentCredential.objects.filter(component_appid=obj.component_appid).first()
        return local_time(credential.ticket_received_at if credential else None)

    @admin.display(description=_("events URL"))
    def events_url(self, obj: Platform) -> str:
        return _paths(obj)[0]

    @admin.display(description=_("URLs to enter on the WeChat Open Platform"))
    def platform_urls(self, obj: Platform) -> str:
        events, page, callback = _paths(obj)
        return format_html(
            "{}: <code>{}</code><br>{}: <code>{}</code><br>{}: <code>{}</code>",
            gettext("events (授权事件接收URL)"),
            events,
            gettext("authorization page"),
            page,
            gettext("authorization callback"),
            callback,
        )

    @admin.display(description=_("ticket and component token"))
    def credential_health(self, obj: Platform) -> str:
        credential = ComponentCredential.objects.filter(component_appid=obj.component_appid).first()
        if credential is None:
            return gettext("no verify ticket received yet")
        return gettext("last ticket %(ticket)s; component token expires %(expires)s") % {
            "ticket": local_time(credential.ticket_received_at),
            "expires": local_time(credential.access_token_expires_at),
        }

    # --- saving through the services ----------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Platform, form: Any, change: bool) -> None:
        if not request.user.is_superuser:
            raise PermissionDenied
        data, actor = form.cleaned_data, staff_actor(request)
        try:
            if not change:
                created = platform_services.platform_add(
                    name=data["name"],
                    component_appid=data["component_appid"],
                    appsecret=data["appsecret"],
                    token=data["token"],
                    aes_key=data["aes_key"],
                    actor=actor,
                )
                obj.pk = created.pk
            else:
                current = Platform.objects.get(pk=obj.pk)
                platform_services.platform_update(
                    platform=current,
                    actor=actor,
                    name=data.get("name"),
                    appsecret=data.get("appsecret") or None,
                    token=data.get("token") or None,
                )
                if data.get("aes_key"):
                    platform_services.platform_rotate_key(platform=current, aes_key=data["aes_key"], actor=actor)
                    self.message_user(
                        request, gettext("the new EncodingAESKey is current; the replaced one is still read")
                    )
        except platform_services.PlatformError as exc:
            # The form checked the shapes; the service's refusal (a taken appid…) is the one message.
            self.message_user(request, exc.message, messages.ERROR)
            request._platform_refused = True  # type: ignore[attr-defined]
            return
        obj.refresh_from_db()

    def response_add(self, request: HttpRequest, obj: Platform, post_url_continue: str | None = None) -> Any:
        if getattr(request, "_platform_refused", False):
            return self._back(request, reverse("admin:authorizers_platform_add"))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Platform) -> Any:
        if getattr(request, "_platform_refused", False):
            return self._back(request, admin_url(obj))
        return super().response_change(request, obj)

    def _back(self, request: HttpRequest, url: str) -> Any:
        from django.http import HttpResponseRedirect

        return HttpResponseRedirect(url)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # Django's admin log would record a refused add of an unsaved row; the audit log has the rest.
        return None if obj.pk is None else super().log_addition(request, obj, message)

    @console_action(
        description=_("Retire the selected platforms (deactivates their merchants)…"), permissions=["retire"]
    )
    @confirmed(consequences=retire_consequences, danger=True)
    def retire(self, request: HttpRequest, queryset: QuerySet) -> None:
        for platform in queryset:
            if platform.from_environment or platform.status == PlatformStatus.RETIRED:
                continue
            result = platform_services.platform_retire(platform=platform, actor=staff_actor(request))
            self.message_user(
                request,
                gettext("%(platform)s retired; %(n)d merchants deactivated")
                % {"platform": platform, "n": result.merchants_deactivated},
            )
