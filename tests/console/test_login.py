"""Staff logins: limited attempts with lockout (django-axes), passwords checked by the validators."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.console.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_a_correct_password_logs_in(operator):
    client = Client()
    assert _login(client, "ops_li", PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_after_five_wrong_passwords_even_the_right_one_is_refused(operator, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "ops_li", "wrong password").status_code == 200  # the form again, with an error
    locked = _login(client, "ops_li", "wrong password")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert _login(client, "ops_li", PASSWORD).status_code == 429
    assert client.get("/admin/").status_code == 302  # still not logged in
    # Another user from the same address is not locked out by ops_li's mistakes.
    from tests.console.conftest import _staff

    _staff("ops_zhao", "operator")
    assert _login(Client(), "ops_zhao", PASSWORD).status_code == 302


@pytest.mark.parametrize("weak", ["12345678", "password123", "ops_li_2024", "short1!"])
def test_weak_staff_passwords_are_refused(operator, weak):
    with pytest.raises(ValidationError):
        validate_password(weak, user=operator)


def test_a_long_unusual_password_is_accepted(operator):
    validate_password(PASSWORD, user=operator)
