"""The platforms page: superusers add, change and retire platforms; secrets are write-only."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers as admin_helpers
from django.urls import reverse

from authorizers.models import AuthorizerStatus, Platform, PlatformStatus
from authorizers.platforms import platform_default, platform_secrets

pytestmark = pytest.mark.django_db

ADD = reverse("admin:authorizers_platform_add")
LIST = reverse("admin:authorizers_platform_changelist")
SECRET, TOKEN, AES = "a1" * 16, "ConsoleToken7", "Q" * 43
FORM = {
    "name": "产品线 B",
    "component_appid": "wx00000000000000b2",
    "appsecret": SECRET,
    "token": TOKEN,
    "aes_key": AES,
}


def test_a_superuser_adds_a_platform_and_its_secrets_are_never_shown_again(superuser_client):
    response = superuser_client.post(ADD, FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    platform = Platform.objects.get(component_appid="wx00000000000000b2")
    assert platform_secrets(platform).appsecret == SECRET
    change = superuser_client.get(reverse("admin:authorizers_platform_change", args=[platform.pk])).content.decode()
    listing = superuser_client.get(LIST).content.decode()
    for page in (change, listing):
        for secret in (SECRET, TOKEN, AES, platform.appsecret_ciphertext, platform.aes_key_ciphertext):
            assert secret not in page
    assert 'type="password"' in change  # write-only inputs, empty


def test_a_malformed_platform_is_refused_beside_its_field(superuser_client):
    response = superuser_client.post(ADD, {**FORM, "aes_key": "short"})
    assert response.status_code == 200
    assert "EncodingAESKey" in response.content.decode()
    assert not Platform.objects.filter(component_appid="wx00000000000000b2").exists()
    assert SECRET not in response.content.decode()  # the typed secret is not echoed back either


def test_changing_the_aes_key_rotates_it_and_an_empty_secret_keeps_the_stored_one(superuser_client):
    superuser_client.post(ADD, FORM)
    platform = Platform.objects.get(component_appid="wx00000000000000b2")
    url = reverse("admin:authorizers_platform_change", args=[platform.pk])
    response = superuser_client.post(url, {"name": "B", "appsecret": "", "token": "", "aes_key": "R" * 43})
    assert response.status_code == 302
    platform.refresh_from_db()
    secrets = platform_secrets(platform)
    assert (platform.name, secrets.appsecret, secrets.aes_key, secrets.previous_aes_keys) == (
        "B",
        SECRET,
        "R" * 43,
        (AES,),
    )


def test_only_superusers_add_or_change_platforms_and_the_default_is_read_only(operator_client, superuser_client):
    default = platform_default()
    assert operator_client.post(ADD, FORM).status_code == 403
    assert not Platform.objects.filter(component_appid="wx00000000000000b2").exists()
    assert operator_client.get(LIST).status_code == 200  # every role sees the platforms
    page = superuser_client.get(reverse("admin:authorizers_platform_change", args=[default.pk])).content.decode()
    assert 'type="password"' not in page and 'name="_save"' not in page


def test_retiring_asks_first_then_deactivates_its_merchants(superuser_client, operator_client, make_authorizer):
    superuser_client.post(ADD, FORM)
    platform = Platform.objects.get(component_appid="wx00000000000000b2")
    merchant = make_authorizer(platform=platform)
    post = {"action": "retire", "index": 0, admin_helpers.ACTION_CHECKBOX_NAME: [platform.pk]}
    assert operator_client.post(LIST, {**post, "confirm": "yes"}).status_code in (200, 302)
    platform.refresh_from_db()
    assert platform.status == PlatformStatus.ACTIVE  # the operator may not retire
    asked = superuser_client.post(LIST, post)
    assert asked.status_code == 200 and "1" in asked.content.decode()
    platform.refresh_from_db()
    assert platform.status == PlatformStatus.ACTIVE
    superuser_client.post(LIST, {**post, "confirm": "yes"})
    platform.refresh_from_db()
    merchant.refresh_from_db()
    assert platform.status == PlatformStatus.RETIRED and merchant.status == AuthorizerStatus.DEACTIVATED
