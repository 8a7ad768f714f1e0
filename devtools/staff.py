"""The demo's staff user: created on the first `make run`, given a new password by `make password`."""

from __future__ import annotations

import secrets

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model

DEMO_STAFF_USERNAME = "admin"


def demo_staff_password_set() -> str:
    """A new random password for the demo's superuser (created if missing), unlocked; returns it.

    The demo runs on one machine with a local database, so whoever can run this can read the database
    anyway: printing a new password is no more than they have. A deployment creates its staff with
    `manage.py createsuperuser` and the console's staff pages instead.
    """
    User = get_user_model()
    password = secrets.token_urlsafe(12)
    user = User.objects.filter(username=DEMO_STAFF_USERNAME).first()
    if user is None:
        User.objects.create_superuser(username=DEMO_STAFF_USERNAME, email="", password=password)
    else:
        user.set_password(password)
        user.is_active = user.is_staff = user.is_superuser = True
        user.save(update_fields=["password", "is_active", "is_staff", "is_superuser"])
    axes_reset(username=DEMO_STAFF_USERNAME)  # a forgotten password often comes with a lockout
    return password


def demo_staff_exists() -> bool:
    return get_user_model().objects.filter(username=DEMO_STAFF_USERNAME).exists()
