"""Roles: viewers see everything and run nothing, operators run the actions, superusers manage keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditEvent
from kfaccounts.models import DeletionRequest, KfAccount

pytestmark = pytest.mark.django_db


def test_the_roles_migration_creates_viewer_and_operator_groups():
    viewer = set(Group.objects.get(name="viewer").permissions.values_list("codename", flat=True))
    operator = set(Group.objects.get(name="operator").permissions.values_list("codename", flat=True))
    assert {"view_authorizer", "view_kfaccount", "view_deletionrequest", "view_auditevent", "view_apikey"} <= viewer
    assert all(codename.startswith("view_") for codename in viewer)
    assert viewer < operator
    assert {"change_authorizer", "add_deletionrequest", "change_deletionrequest"} <= operator
    # Keys, the platform's credentials and the audit log are not the operators' to change.
    assert not {"add_apikey", "change_apikey", "change_componentcredential", "change_auditevent"} & operator
    assert not any(codename.startswith("delete_") for codename in operator)
    # The actions' own permissions (Meta.permissions), named for what they do.
    assert {"operate_authorizer", "request_deletion", "operate_deletionrequest", "clear_platformalert"} <= operator
    assert "manage_apikey" not in operator


def test_console_actions_go_through_console_action():
    """console_action refuses an action without a permission; a plain admin.action would not."""
    console = Path(__file__).resolve().parents[2] / "console"
    plain = [
        str(path.relative_to(console))
        for path in console.rglob("*.py")
        if "@admin.action" in path.read_text(encoding="utf-8")
    ]
    assert plain == []


def test_every_admin_action_declares_the_permission_it_needs():
    """Including other apps' admins: an action without permissions runs for any staff user who can see the list."""
    seen = 0
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or ():
            function = getattr(model_admin, action) if isinstance(action, str) else action
            assert getattr(function, "allowed_permissions", ()), f"{model.__name__}: action {action!r}"
            seen += 1
    assert seen >= 9
    assert "delete_selected" not in dict(admin.site.actions)


def test_viewer_sees_every_console_page_but_is_offered_no_action(viewer_client, shop):
    for url in (
        "/admin/",
        reverse("admin:authorizers_authorizer_changelist"),
        reverse("admin:authorizers_authorizer_change", args=[shop.pk]),
        reverse("admin:kfaccounts_kfaccount_changelist"),
        reverse("admin:kfaccounts_deletionrequest_changelist"),
        reverse("admin:audit_auditevent_changelist"),
    ):
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        assert b'name="action"' not in response.content, url


@pytest.mark.parametrize(
    ("changelist", "action", "rows"),
    [
        ("admin:kfaccounts_kfaccount_changelist", "delete_selected_kf_accounts", lambda shop: KfAccount.objects.all()),
        ("admin:authorizers_authorizer_changelist", "refresh_token", lambda shop: [shop]),
        ("admin:authorizers_authorizer_changelist", "deactivate", lambda shop: [shop]),
        ("admin:kfaccounts_deletionrequest_changelist", "retry_failed", lambda shop: DeletionRequest.objects.all()),
        ("admin:kfaccounts_deletionrequest_changelist", "cancel_pending", lambda shop: DeletionRequest.objects.all()),
    ],
)
def test_a_viewer_posting_an_action_runs_nothing(viewer_client, shop, wechat, changelist, action, rows):
    before = (AuditEvent.objects.count(), DeletionRequest.objects.count())
    statuses = list(DeletionRequest.objects.order_by("pk").values_list("status", flat=True))
    response = viewer_client.post(
        reverse(changelist),
        {"action": action, "index": 0, "_selected_action": [r.pk for r in rows(shop)], "confirm": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert (AuditEvent.objects.count(), DeletionRequest.objects.count()) == before
    assert list(DeletionRequest.objects.order_by("pk").values_list("status", flat=True)) == statuses
    assert len(wechat.calls) == 0
    shop.refresh_from_db()
    assert shop.status == "active"


def test_api_keys_are_issued_by_superusers_only(operator_client, superuser_client, shop):
    changelist = reverse("admin:authorizers_authorizer_changelist")
    page = operator_client.get(changelist).content.decode()
    assert 'value="refresh_token"' in page
    assert 'value="issue_api_key"' not in page
    keys = shop.api_keys.count()
    operator_client.post(changelist, {"action": "issue_api_key", "index": 0, "_selected_action": [shop.pk]})
    assert shop.api_keys.count() == keys
    assert 'value="issue_api_key"' in superuser_client.get(changelist).content.decode()


def test_nothing_holding_history_can_be_deleted_even_by_a_superuser(superuser_client, shop):
    for name, pk in (
        ("authorizers_authorizer", shop.pk),
        ("authorizers_apikey", shop.api_keys.first().pk),
        ("kfaccounts_deletionrequest", DeletionRequest.objects.earliest("id").pk),
        ("audit_auditevent", AuditEvent.objects.earliest("id").pk),
    ):
        response = superuser_client.post(reverse(f"admin:{name}_delete", args=[pk]), {"post": "yes"})
        assert response.status_code == 403, name
    assert shop.deletions.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_roles_keep_every_apps_permissions_after_a_database_flush():
    """The console's post_migrate receiver runs before auth's: the last app's permissions (cleanup)
    were missing from both roles after a flush (every transactional test after the first)."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    for role in ("viewer", "operator"):
        codenames = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert {"view_cleanuprun", "view_cleanuprule", "view_webhookdelivery"} <= codenames, role
