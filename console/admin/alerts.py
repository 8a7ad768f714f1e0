"""The one alert list: platform-wide alerts (61004, a stale verify ticket) and each merchant's
(the reconciliation's findings), raised and cleared only by authorizers/alerts.py."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authorizers.alerts import alert_clear
from authorizers.models import Authorizer, Platform, PlatformAlert
from console.admin.base import ObjectActionsAdmin
from console.admin.helpers import changelist_link, console_action, holds, staff_actor


@admin.register(PlatformAlert)
class PlatformAlertAdmin(ObjectActionsAdmin):
    """What a person must look at; deletions wait while a blocking platform alert (61004) is open."""

    list_display = (
        "code",
        "platform",
        "merchant",
        "message",
        "errcode",
        "errmsg",
        "first_seen_at",
        "last_seen_at",
        "occurrences",
        "cleared_at",
        "cleared_by",
    )
    list_filter = (("cleared_at", admin.EmptyFieldListFilter), "code", "component_appid")
    search_fields = ("authorizer_appid", "message")
    fields = (
        "code",
        "component_appid",
        "authorizer_appid",
        "message",
        "errcode",
        "errmsg",
        "first_seen_at",
        "last_seen_at",
        "occurrences",
        "cleared_at",
        "cleared_by",
    )
    readonly_fields = fields
    actions = ["clear"]
    object_actions = ("clear",)
    object_action_labels = {"clear": _("Mark as fixed")}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # raised by the calls and checks that meet the problem

    def get_queryset(self, request: HttpRequest) -> QuerySet[PlatformAlert]:
        # The merchant's name in the same query (the appid is not a foreign key: WeChat may list a
        # merchant that has no row here), and its platform's.
        authorizer = Authorizer.objects.filter(
            appid=OuterRef("authorizer_appid"), platform__component_appid=OuterRef("component_appid")
        )
        platform = Platform.objects.filter(component_appid=OuterRef("component_appid"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                merchant_known=Exists(authorizer),
                merchant_nickname=Subquery(authorizer.values("nickname")[:1]),
                platform_name=Subquery(platform.values("name")[:1]),
            )
        )

    @admin.display(description=_("platform"), ordering="component_appid")
    def platform(self, obj: PlatformAlert) -> str:
        return f"{getattr(obj, 'platform_name', '') or '?'} ({obj.component_appid})"

    @admin.display(description=_("merchant"), ordering="authorizer_appid")
    def merchant(self, obj: PlatformAlert) -> str:
        if not obj.authorizer_appid:
            return gettext("the platform")
        if not getattr(obj, "merchant_known", False):
            return gettext("%(appid)s (not known here)") % {"appid": obj.authorizer_appid}
        label = f"{getattr(obj, 'merchant_nickname', '') or gettext('(no name)')} ({obj.authorizer_appid})"
        return changelist_link(
            Authorizer, label, appid=obj.authorizer_appid, platform__component_appid=obj.component_appid
        )

    has_clear_permission = holds("authorizers.clear_platformalert")

    def object_action_applies(self, name: str, obj: Any) -> bool:
        return obj.cleared_at is None

    @console_action(description=_("Mark the selected alerts as fixed (held deletions resume)"), permissions=["clear"])
    def clear(self, request: HttpRequest, queryset: QuerySet) -> None:
        for alert in queryset.filter(cleared_at__isnull=True):
            if alert_clear(
                code=alert.code,
                authorizer_appid=alert.authorizer_appid,
                component_appid=alert.component_appid,
                actor=staff_actor(request),
            ):
                self.message_user(request, gettext("%(alert)s: marked as fixed") % {"alert": _alert_name(alert)})


def _alert_name(alert: PlatformAlert) -> str:
    if alert.authorizer_appid:
        return f"{alert.get_code_display()} ({alert.authorizer_appid})"
    return str(alert.get_code_display())
