"""django-axes' lockout records, with its one action declaring the permission it needs."""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from console.admin.helpers import console_action


class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    # Unlocking staff accounts is managing staff: superusers (no group holds axes' permissions).
    @console_action(
        description=AxesAccessAttemptAdmin.cleanup_expired_attempts.short_description, permissions=["delete"]
    )
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, AccessAttemptAdmin)
