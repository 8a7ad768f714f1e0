from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = _("Staff console")

    def ready(self) -> None:
        from console.roles import roles_sync_after_migrate

        # The roles migration creates the groups; this keeps their permissions complete when an app
        # (cleanup, webhooks…) adds models later, and brings them back after a test database flush.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="console.roles")
