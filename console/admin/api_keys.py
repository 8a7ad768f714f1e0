"""Merchants' API keys: issuing one (an action on the merchant list, shown once) asks first, and so
does revoking (the API keys list).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from authorizers.api_keys import api_key_revoke
from authorizers.models import ApiKey, AuthorizerStatus
from console.admin.base import ObjectActionsAdmin
from console.admin.confirm import Consequences, Target, confirmed
from console.admin.helpers import (
    ByPlatformAdmin,
    admin_url,
    console_action,
    holds,
    local_time,
    merchant_name,
    not_active,
    staff_actor,
)


def issue_key_consequences(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Consequences:
    targets, skipped = [], []
    for authorizer in queryset:
        if authorizer.status != AuthorizerStatus.ACTIVE:
            skipped.append((merchant_name(authorizer), not_active(authorizer)))
            continue
        active = ApiKey.objects.filter(authorizer=authorizer, revoked_at__isnull=True).count()
        targets.append(
            Target(
                label=merchant_name(authorizer),
                effects=[
                    gettext("a new key that can delete this merchant's kf accounts through the API"),
                    ngettext("its %(n)d active key keeps working", "its %(n)d active keys keep working", active)
                    % {"n": active},
                ],
                url=admin_url(authorizer),
            )
        )
    count = len(targets)
    return Consequences(
        title=gettext("Issue API keys?"),
        summary=ngettext(
            "%(n)d new API key will be issued. It is shown once, on the next page: copy it there.",
            "%(n)d new API keys will be issued. Each is shown once, on the next page: copy them there.",
            count,
        )
        % {"n": count},
        targets=targets,
        skipped=skipped,
        undo=gettext(
            "A key cannot be taken back once it is shown: if it is not needed or leaks, revoke it "
            "(API keys list); the merchant's systems using it are then refused."
        ),
        confirm_label=ngettext("Yes, issue %(n)d key", "Yes, issue %(n)d keys", count) % {"n": count},
    )


def revoke_key_consequences(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Consequences:
    targets, skipped = [], []
    for api_key in queryset.select_related("authorizer"):
        label = f"kfp_{api_key.prefix}_… — {merchant_name(api_key.authorizer)}"
        if api_key.revoked_at is not None:
            skipped.append((label, gettext("already revoked %(at)s") % {"at": local_time(api_key.revoked_at)}))
            continue
        used = (
            gettext("last used %(at)s") % {"at": local_time(api_key.last_used_at)}
            if api_key.last_used_at
            else gettext("never used")
        )
        targets.append(
            Target(
                label=label,
                effects=[gettext("every request with it is refused (401) from now on"), used],
                url=admin_url(api_key),
            )
        )
    count = len(targets)
    return Consequences(
        title=gettext("Revoke API keys?"),
        summary=ngettext("%(n)d API key will be revoked.", "%(n)d API keys will be revoked.", count) % {"n": count},
        targets=targets,
        skipped=skipped,
        undo=gettext(
            "No: a revoked key never works again. Issue a new key from the merchant's page and give it to the merchant."
        ),
        confirm_label=ngettext("Yes, revoke %(n)d key", "Yes, revoke %(n)d keys", count) % {"n": count},
    )


@admin.register(ApiKey)
class ApiKeyAdmin(ByPlatformAdmin, ObjectActionsAdmin):
    list_display = ("prefix_shown", "authorizer", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("prefix", "authorizer__appid", "authorizer__nickname", "name")
    fields = ("authorizer", "prefix_shown", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]
    object_actions = ("revoke",)
    object_action_labels = {"revoke": _("Revoke this key…")}

    def object_action_applies(self, name: str, obj: Any) -> bool:
        return obj.revoked_at is None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued from the merchant's page (shown once) or `manage.py issue_api_key`

    has_manage_api_keys_permission = holds("authorizers.manage_apikey")

    @admin.display(description=_("key"), ordering="prefix")
    def prefix_shown(self, obj: ApiKey) -> str:
        return f"kfp_{obj.prefix}_…"

    @console_action(description=_("Revoke the selected API keys…"), permissions=["manage_api_keys"])
    @confirmed(consequences=revoke_key_consequences, danger=True)
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for api_key in queryset.select_related("authorizer"):
            api_key_revoke(api_key=api_key, actor=staff_actor(request))
            self.message_user(
                request,
                f"{merchant_name(api_key.authorizer)}: "
                + gettext("API key %(prefix)s… revoked") % {"prefix": api_key.prefix},
            )
