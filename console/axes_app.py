"""django-axes under the console's name for it: INSTALLED_APPS names this config instead of "axes".

A module of its own: a second AppConfig in console/apps.py would stop Django from picking
ConsoleConfig as the console's default (and its ready() would never run).
"""

from __future__ import annotations

import axes.apps
from django.utils.translation import gettext_lazy as _


class AxesConfig(axes.apps.AppConfig):
    verbose_name = _("Login lockouts")
