"""django-axes with two lockout tiers: a username from one address, and one address for any username.

The username tier locks a username+address pair after ``AXES_FAILURE_LIMIT`` wrong passwords, so
guessing a known staff username (a superuser's) from many addresses locks out only those addresses,
never the account for everyone. The address tier locks an address after ``AXES_IP_FAILURE_LIMIT``
wrong passwords over any usernames, so one address cannot spray passwords across accounts.

axes compares the largest count of its tiers with one limit; this handler gives each tier its own.
``AXES_LOCKOUT_PARAMETERS`` lists the address tier first, the username tier second.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


class TieredLockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        by_address, by_username = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if by_address >= settings.AXES_IP_FAILURE_LIMIT:
            return max(by_username, settings.AXES_FAILURE_LIMIT)  # the address is locked, whoever it names
        return by_username
