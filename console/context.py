"""Template context for every console page: the platform's open alerts (e.g. 61004)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from authorizers.alerts import alerts_active


def platform_alerts(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_staff", False):
        return {}
    # Lazy: only pages that show the banner (the console's) read the table. The banner carries the
    # platform-wide alerts; a merchant's alerts are on the dashboard and the alert list.
    return {"console_platform_alerts": SimpleLazyObject(lambda: alerts_active(authorizer_appid=""))}
