"""The two staff roles: ``viewer`` sees everything and runs nothing; ``operator`` runs the actions.

Superusers (not a group) manage API keys, the platform's credentials and staff accounts. Every
admin action declares the permission it needs (see docs/console.md), so a role is nothing but a
set of Django permissions:

- viewer: ``view_*`` on every model of the domain apps;
- operator: the viewer's, plus ``add_*`` and ``change_*`` on the domain apps' models, except the
  superuser-only ones below and the audit log (append-only). Nobody but a superuser gets ``delete_*``.
"""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"

DOMAIN_APPS = ("authorizers", "kfaccounts", "audit", "cleanup", "webhooks", "observability", "console")
SUPERUSER_ONLY_MODELS = frozenset({("authorizers", "apikey"), ("authorizers", "componentcredential")})
READ_ONLY_APPS = frozenset({"audit"})


def roles_sync(*, group_model: Any, permission_model: Any) -> None:
    """Create both groups and give them their permissions (idempotent; takes models for migrations)."""
    domain = permission_model.objects.filter(content_type__app_label__in=DOMAIN_APPS).select_related("content_type")
    viewing, operating = [], []
    for permission in domain:
        action = permission.codename.split("_", 1)[0]
        model = (permission.content_type.app_label, permission.content_type.model)
        if action == "view":
            viewing.append(permission)
            operating.append(permission)
        elif action in ("add", "change") and model not in SUPERUSER_ONLY_MODELS and model[0] not in READ_ONLY_APPS:
            operating.append(permission)
    viewer, _ = group_model.objects.get_or_create(name=VIEWER)
    operator, _ = group_model.objects.get_or_create(name=OPERATOR)
    viewer.permissions.set(viewing)
    operator.permissions.set(operating)


def roles_sync_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    roles_sync(group_model=Group, permission_model=Permission)
