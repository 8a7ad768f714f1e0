"""django-axes' lockout records, with its one action declaring the permission it needs."""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from console.admin.helpers import console_action


class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    # Unlocking staff accounts is managing staff: superusers (no group holds axes' permissions).
    @console_action(description=_("Clean up expired lockouts"), permissions=["delete"])
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet) -> None:
        # axes stamps the attempt time on a request only while it handles a login; its own action
        # assumed one and answered 500 from the list. Its message was an f-string gettext cannot see.
        AxesProxyHandler.update_request(request)
        count = self.handler.clean_expired_user_attempts(request=request)
        self.message_user(
            request,
            ngettext("%(n)d expired lockout cleaned up", "%(n)d expired lockouts cleaned up", count) % {"n": count},
        )


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, AccessAttemptAdmin)
