"""Staff members: one page creates a member with a role, the list shows roles, a superuser unlocks.

Every change is audited with the superuser who made it; only superusers reach these pages.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.console.conftest import PASSWORD, _staff

pytestmark = pytest.mark.django_db

USERS = "admin:auth_user_changelist"
ADD = "admin:auth_user_add"
NEW_PASSWORD = "plum blossom river 8812"


def _login(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def _lock(username: str, settings) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), username, "wrong password")
    assert _login(Client(), username, PASSWORD).status_code == 429


@pytest.mark.parametrize(
    ("role", "is_super", "groups"),
    [("viewer", False, ["viewer"]), ("operator", False, ["operator"]), ("superuser", True, [])],
)
def test_a_member_is_created_with_a_role_in_one_step_and_can_log_in_at_once(superuser_client, role, is_super, groups):
    form = superuser_client.get(reverse(ADD)).content.decode()
    assert 'name="role"' in form and 'name="password1"' in form
    assert "permissions" not in form.lower() and 'name="is_staff"' not in form and 'name="groups"' not in form

    response = superuser_client.post(
        reverse(ADD),
        {"username": "new_chen", "email": "", "role": role, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == reverse(USERS)
    user = User.objects.get(username="new_chen")
    assert user.is_staff and user.is_superuser == is_super
    assert sorted(user.groups.values_list("name", flat=True)) == groups
    assert AuditEvent.objects.filter(
        action="staff.created", subject="new_chen", outcome=role, actor_label="root_zhang"
    ).exists()
    listing = superuser_client.get(reverse(USERS)).content.decode()
    assert f"Created new_chen as {role}: they can log in now." in listing
    client = Client()
    assert _login(client, "new_chen", NEW_PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_weak_or_mistyped_password_is_refused_on_the_same_page(superuser_client):
    weak = superuser_client.post(
        reverse(ADD), {"username": "new_chen", "role": "viewer", "password1": "12345678", "password2": "12345678"}
    )
    assert weak.status_code == 200 and "This password is too common" in weak.content.decode()
    differ = superuser_client.post(
        reverse(ADD), {"username": "new_chen", "role": "viewer", "password1": NEW_PASSWORD, "password2": "other 1"}
    )
    assert "The two passwords differ." in differ.content.decode()
    assert not User.objects.filter(username="new_chen").exists()


def test_the_list_shows_each_members_role_and_filters_by_it(superuser_client, operator, viewer):
    _staff("nobody_he")  # made outside the console: staff, but no role
    html = superuser_client.get(reverse(USERS)).content.decode()
    for username, role in (("ops_li", "operator"), ("viewer_wang", "viewer"), ("root_zhang", "superuser")):
        assert f'{username}</a></th><td class="field-role">{role}</td>' in html
    assert "none (cannot use the console)" in html
    operators = superuser_client.get(reverse(USERS) + "?role=operator").content.decode()
    assert "ops_li" in operators and "viewer_wang" not in operators


def test_changing_a_role_is_one_choice_and_is_audited(superuser_client, viewer):
    page = reverse("admin:auth_user_change", args=[viewer.pk])
    form = superuser_client.get(page).content.decode()
    assert '<input type="radio" name="role" value="viewer" required id="id_role_0" checked>' in form
    assert 'name="user_permissions"' not in form and 'name="groups"' not in form
    response = superuser_client.post(
        page, {"username": "viewer_wang", "role": "operator", "is_active": "on", "first_name": "", "last_name": ""}
    )
    assert response.status_code == 302
    assert list(viewer.groups.values_list("name", flat=True)) == ["operator"]
    assert AuditEvent.objects.filter(
        action="staff.role_changed", subject="viewer_wang", outcome="operator", detail__from="viewer"
    ).exists()


def test_only_superusers_manage_staff(operator_client, viewer_client):
    for client in (operator_client, viewer_client):
        assert client.get(reverse(USERS)).status_code == 403
        assert client.get(reverse(ADD)).status_code == 403
    assert operator_client.get("/admin/auth/group/").status_code == 404  # the roles are code, not a page


def test_a_locked_out_member_is_shown_and_unlocked_from_the_console_and_it_is_audited(
    superuser_client, operator, settings
):
    _lock("ops_li", settings)
    listing = superuser_client.get(reverse(USERS)).content.decode()
    assert 'data-locked="yes"' in listing
    page = reverse("admin:auth_user_change", args=[operator.pk])
    assert 'data-action="unlock"' in superuser_client.get(page).content.decode()

    response = superuser_client.post(
        reverse(USERS), {"action": "unlock", "index": 0, "_selected_action": [operator.pk]}, follow=True
    )
    assert "Unlocked ops_li: they can log in again now." in response.content.decode()
    assert AuditEvent.objects.filter(
        action="staff.unlocked", subject="ops_li", outcome="unlocked", actor_label="root_zhang"
    ).exists()
    assert _login(Client(), "ops_li", PASSWORD).status_code == 302
    assert 'data-locked="yes"' not in superuser_client.get(reverse(USERS)).content.decode()
    assert 'data-action="unlock"' not in superuser_client.get(page).content.decode()


def test_the_lock_page_says_how_long_and_names_the_same_command_as_the_docs(operator, settings):
    from pathlib import Path

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(Client(), "ops_li", "wrong password")
    locked = _login(Client(), "ops_li", "wrong password").content.decode()
    assert "The lock lasts 15 minutes after the last wrong password" in locked
    command = "python manage.py axes_reset_username USERNAME"
    assert command in locked
    docs = (Path(__file__).resolve().parents[2] / "docs" / "console.md").read_text(encoding="utf-8")
    assert command in docs
