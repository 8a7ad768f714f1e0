"""Staff logins: limited attempts with lockout (django-axes), passwords checked by the validators."""

from __future__ import annotations

import ipaddress

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


def test_guessing_from_many_addresses_cannot_lock_a_superuser_out_for_everyone(operator, settings):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root_wang", password=PASSWORD)
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.1/32"),)
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    for n in range(20):  # four times the limit, each forwarded address below it
        forwarded = f"198.51.100.{n}"
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            response = attacker.post(
                "/admin/login/?next=/admin/",
                {"username": "root_wang", "password": "wrong password"},
                HTTP_X_FORWARDED_FOR=forwarded,
            )
            assert response.status_code == 200
    # The superuser, behind the same proxy from its own address, logs in.
    own = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert _login(own, "root_wang", PASSWORD).status_code == 302
    # An address that keeps guessing is locked out whoever it names (the address tier).
    sprayer = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.66")
    names = [f"user{n}" for n in range(settings.AXES_IP_FAILURE_LIMIT)]
    statuses = [_login(sprayer, name, "wrong password").status_code for name in names]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    assert _login(sprayer, "root_wang", PASSWORD).status_code == 429
    # ...and that does not touch anyone else.
    assert (
        _login(Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.51"), "ops_li", PASSWORD).status_code
        == 302
    )


def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(operator, settings):
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.1/32"),)
    direct = Client(REMOTE_ADDR="198.51.100.77")  # not a trusted proxy: its header means nothing
    for n in range(settings.AXES_FAILURE_LIMIT):
        direct.post(
            "/admin/login/?next=/admin/",
            {"username": "ops_li", "password": "wrong password"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
    assert _login(direct, "ops_li", PASSWORD).status_code == 429


@pytest.mark.parametrize("weak", ["12345678", "password123", "ops_li_2024", "short1!"])
def test_weak_staff_passwords_are_refused(operator, weak):
    with pytest.raises(ValidationError):
        validate_password(weak, user=operator)


def test_a_long_unusual_password_is_accepted(operator):
    validate_password(PASSWORD, user=operator)
