"""What every console admin class shares: declared permissions, the staff actor, local times, links."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.services import Actor
from authorizers.models import Platform
from console.guidance import failure_hint

Action = Callable[..., Any]


def console_action(*, description: Any, permissions: list[str]) -> Callable[[Action], Action]:
    """``admin.action`` that refuses to exist without the permission it needs.

    Django runs an action with no ``permissions`` for anyone who can see the list (a view-only
    staff user could refresh tokens); with them, it neither offers nor runs it for others.
    """
    if not permissions:
        raise ValueError("every console action declares the permission it needs")
    return admin.action(description=description, permissions=permissions)


def holds(permission: str) -> Callable[[Any, HttpRequest], bool]:
    """A ``has_<name>_permission`` method for ``console_action(permissions=[name])``.

    Backed by one of the model's ``Meta.permissions`` ("app.codename"), named for what the action
    does, where Django's add/change would mislead (retrying a deletion is not editing its row).
    """

    def has_permission(model_admin: Any, request: HttpRequest) -> bool:
        return request.user.has_perm(permission)

    return has_permission


def staff_actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user)


def local_time(value: datetime | None) -> str:
    """A time in TIME_ZONE to the second (the format of console/formats), or an em dash."""
    if value is None:
        return "—"
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def local_times_in(value: Any) -> Any:
    """The same JSON with every timestamp string (ISO 8601 with a zone, as the services store them)
    turned into the console's one format: Beijing time (TIME_ZONE) to the second."""
    if isinstance(value, dict):
        return {key: local_times_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [local_times_in(item) for item in value]
    if isinstance(value, str) and _ISO_TIME.match(value):
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is not None:
            return local_time(parsed)
    return value


def json_shown(value: Any) -> str:
    """A JSON value as the console shows it: indented, Chinese readable, times in local time."""
    if value in (None, {}, []):
        return "—"
    text = json.dumps(local_times_in(value), ensure_ascii=False, indent=2, sort_keys=True)
    return format_html('<pre class="console-json">{}</pre>', text)


def admin_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def admin_link(obj: Any, label: Any | None = None) -> str:
    return format_html('<a href="{}">{}</a>', admin_url(obj), label if label is not None else obj)


def changelist_link(model: Any, label: Any, **query: Any) -> str:
    from urllib.parse import urlencode

    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(query), label)


def merchant_name(authorizer: Any) -> str:
    """How a merchant is named in every message: nickname and appid, never the appid alone."""
    # Outside the f-string: xgettext (makemessages) does not look inside one.
    name = authorizer.nickname or gettext("(no name)")
    return f"{name} ({authorizer.appid})"


def not_active(authorizer: Any) -> str:
    """Why an action skips a merchant that is revoked or deactivated."""
    return gettext("not active (%(status)s): nothing to do") % {"status": authorizer.get_status_display()}


class NoDeleteAdmin(admin.ModelAdmin):
    """History-bearing rows are never deleted from the console: deactivate or revoke instead."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(NoDeleteAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def reason_with_hint(deletion: Any) -> str:
    """A deletion's reason in words and, for a failure someone must act on, what to do (the 65400
    hint: enable customer service in the WeChat admin). The one way every console page shows a reason."""
    label = deletion.get_reason_display() or "—"
    hint = failure_hint(deletion.reason) if deletion.status == "failed" else ""
    if not hint:
        return label
    return format_html('{}<br><small class="console-hint" data-hint="{}">{}</small>', label, deletion.reason, hint)


def inline_table(
    rows: Iterable[Sequence[Any]],
    *,
    headers: Sequence[Any] = (),
    more: Any = "",
    table_id: str = "",
    row_keys: Sequence[str] | None = None,
) -> SafeString:
    """A small table inside a read-only field (a merchant's recent deletions, a run's accounts…),
    from the one template ``admin/console/inline_table.html``: cells are escaped unless already
    safe HTML (links made by ``admin_link``), ``more`` is a link below it, ``row_keys`` name the rows
    (``data-account``) for the browser tests."""
    rows = list(rows)
    keys: list[str | None] = list(row_keys) if row_keys is not None else [None] * len(rows)
    html = render_to_string(
        "admin/console/inline_table.html",
        {"rows": list(zip(keys, rows, strict=True)), "headers": headers, "more": more, "table_id": table_id},
    )
    return mark_safe(html.strip())  # noqa: S308 - rendered by the template engine, which escaped every cell


# --- the platform of merchant-scoped rows (issue 19) ---------------------------------------------


def several_platforms(request: HttpRequest) -> bool:
    """Whether more than one platform was ever served (asked once per request). With one, the lists
    look exactly as before platforms existed: no platform column, no platform filter."""
    known = getattr(request, "_console_several_platforms", None)
    if known is None:
        known = Platform.objects.count() > 1
        request._console_several_platforms = known  # type: ignore[attr-defined]
    return bool(known)


@functools.cache
def platform_filter(path: str) -> type[admin.SimpleListFilter]:
    """The "by platform" filter of a list whose rows reach their platform through ``path``
    (``platform``, ``authorizer__platform``…); its parameter is ``platform=<component appid>``."""

    class PlatformFilter(admin.SimpleListFilter):
        title = _("platform")
        parameter_name = "platform"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(p.component_appid, str(p)) for p in Platform.objects.order_by("-is_default", "name")]

        def queryset(self, request: HttpRequest, queryset: Any) -> Any:
            value = self.value()
            return queryset.filter(**{f"{path}__component_appid": value}) if value else None

    return PlatformFilter


class ByPlatformAdmin(admin.ModelAdmin):
    """A merchant-scoped list with a platform column and filter, once several platforms exist.

    ``platform_path`` is how a row reaches its platform; the column follows it in the list's own
    query (``select_related``), so it costs no query a row.
    """

    platform_path = "authorizer__platform"

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        if several_platforms(request) and "platform_shown" not in shown:
            shown.insert(min(2, len(shown)), "platform_shown")
        return shown

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if several_platforms(request):
            filters.insert(0, platform_filter(self.platform_path))
        return filters

    def get_list_select_related(self, request: HttpRequest) -> Any:
        related = super().get_list_select_related(request)
        if not several_platforms(request) or related is True:
            return related
        return (*(related or ()), self.platform_path)

    @admin.display(description=_("platform"))
    def platform_shown(self, obj: Any) -> str:
        platform = obj
        for step in self.platform_path.split("__"):
            platform = getattr(platform, step, None)
            if platform is None:
                return "—"
        return str(platform.name)
