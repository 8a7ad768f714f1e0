"""The two staff roles: ``viewer`` sees everything and runs nothing; ``operator`` runs the actions.

Superusers (not a group) manage API keys, the platforms and their credentials, and staff accounts. Every
admin action declares the permission it needs (see docs/console.md), so a role is nothing but a
set of Django permissions:

- viewer: ``view_*`` on every model of the domain apps;
- operator: the viewer's, plus ``add_*`` and ``change_*`` on the domain apps' models and the
  permissions the models declare for their actions (``Meta.permissions``: ``operate_authorizer``,
  ``request_deletion``…), except the superuser-only ones below and the audit log (append-only).
  Nobody but a superuser gets ``delete_*`` (or ``manage_apikey``: API keys are superuser-only;
  or ``manage_webhook_endpoints``: registering, redirecting and rotating webhook secrets).
"""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"

DOMAIN_APPS = ("authorizers", "kfaccounts", "audit", "cleanup", "webhooks", "observability", "console")
SUPERUSER_ONLY_MODELS = frozenset(
    {("authorizers", "apikey"), ("authorizers", "componentcredential"), ("authorizers", "platform")}
)
READ_ONLY_APPS = frozenset({"audit"})
# Custom permissions no role carries: where a merchant's webhook events go and the secret that signs
# them are as powerful as an API key (superusers, or a user given the permission by name).
SUPERUSER_ONLY_PERMISSIONS = frozenset({"manage_webhook_endpoints"})
DEFAULT_ACTIONS = frozenset({"view", "add", "change", "delete"})


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
        elif (
            model in SUPERUSER_ONLY_MODELS
            or model[0] in READ_ONLY_APPS
            or permission.codename in SUPERUSER_ONLY_PERMISSIONS
        ):
            continue
        elif action in ("add", "change") or action not in DEFAULT_ACTIONS:
            operating.append(permission)
    viewer, _ = group_model.objects.get_or_create(name=VIEWER)
    operator, _ = group_model.objects.get_or_create(name=OPERATOR)
    viewer.permissions.set(viewing)
    operator.permissions.set(operating)


def roles_sync_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # The console's receiver is connected before auth's (console comes first in INSTALLED_APPS), so
    # for the last app migrated (cleanup) it ran before that app's permissions existed: after a
    # database flush the roles lacked them. Creating them first (idempotent) removes the ordering.
    create_permissions(sender, verbosity=0, interactive=False, using=using)
    roles_sync(group_model=Group, permission_model=Permission)
