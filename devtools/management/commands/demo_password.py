"""`make password`: a new password for the demo's staff user, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from devtools.staff import DEMO_STAFF_USERNAME, demo_staff_password_set


class Command(BaseCommand):
    help = "Set and print a new password for the demo's staff user (created if missing); clears its lockout."

    def handle(self, *args: Any, **options: Any) -> None:
        password = demo_staff_password_set()
        self.stdout.write(f"user: {DEMO_STAFF_USERNAME}  password: {password}")
