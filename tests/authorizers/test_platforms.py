"""Platforms (issue 19): the environment's is the default, others are stored with their secrets
encrypted, rotated and retired through authorizers/platforms.py and its commands."""

from __future__ import annotations

import io
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from audit.services import Actor
from authorizers import fieldcrypto
from authorizers.models import ApiKey, Authorizer, AuthorizerStatus, Platform, PlatformStatus
from authorizers.platforms import (
    PlatformError,
    PlatformRetired,
    UnknownPlatform,
    platform_add,
    platform_default,
    platform_forget_previous_key,
    platform_get,
    platform_retire,
    platform_rotate_key,
    platform_secrets,
    platform_update,
    platforms_active,
)
from authorizers.rotation import encryption_keys_rotate

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
SECRET, TOKEN, AES = "b" * 32, "PlatformBToken1", "B" * 43


def add_b(**overrides) -> Platform:
    values = {
        "name": "product B",
        "component_appid": "wx00000000000000b2",
        "appsecret": SECRET,
        "token": TOKEN,
        "aes_key": AES,
        "actor": ACTOR,
    }
    return platform_add(**{**values, **overrides})


def test_the_environments_platform_is_the_default_and_every_row_made_without_one_belongs_to_it(
    settings, make_authorizer
):
    merchant = make_authorizer()
    default = platform_default()
    assert default.component_appid == settings.WECHAT_COMPONENT_APPID and default.is_default
    assert merchant.platform == default and default.from_environment
    # Its credentials are the settings', nothing is stored.
    secrets = platform_secrets(default)
    assert (secrets.appsecret, secrets.token, secrets.aes_key) == (
        settings.WECHAT_COMPONENT_APPSECRET,
        settings.WECHAT_COMPONENT_TOKEN,
        settings.WECHAT_COMPONENT_AES_KEY,
    )
    assert not (default.appsecret_ciphertext or default.token_ciphertext or default.aes_key_ciphertext)
    assert platforms_active() == [default]
    # bulk_create fills the default too (tests and seeds build rows without one).
    (bulk,) = Authorizer.objects.bulk_create([Authorizer(appid="wx00000000000000c3")])
    assert bulk.platform_id == default.pk


def test_the_default_flag_follows_the_environment(settings):
    first = platform_default()
    settings.WECHAT_COMPONENT_APPID = "wx00000000000000d4"
    second = platform_default()
    assert second.is_default and second.component_appid == "wx00000000000000d4"
    first.refresh_from_db()
    assert not first.is_default
    assert Platform.objects.filter(is_default=True).count() == 1


def test_an_added_platforms_secrets_are_stored_encrypted_bound_to_it_and_read_back():
    platform = add_b()
    for field, plain in (("appsecret", SECRET), ("token", TOKEN), ("aes_key", AES)):
        stored = getattr(platform, f"{field}_ciphertext")
        assert stored.startswith("v1:") and plain not in stored
    secrets = platform_secrets(Platform.objects.get(pk=platform.pk))
    assert (secrets.component_appid, secrets.appsecret, secrets.token, secrets.aes_key) == (
        "wx00000000000000b2",
        SECRET,
        TOKEN,
        AES,
    )
    assert SECRET not in repr(secrets) and AES not in repr(secrets)
    # Moved to another platform's row, a ciphertext does not decrypt.
    other = add_b(name="product C", component_appid="wx00000000000000c3", aes_key="C" * 43)
    other.aes_key_ciphertext = platform.aes_key_ciphertext
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        platform_secrets(other)
    assert AuditEvent.objects.filter(action="platform.added", subject="wx00000000000000b2").exists()
    assert not AuditEvent.objects.filter(detail__icontains=SECRET).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"component_appid": "not-an-appid"}, "component_appid"),
        ({"aes_key": "short"}, "aes_key"),
        ({"token": "no spaces allowed"}, "token"),
        ({"appsecret": ""}, "appsecret"),
        ({"name": ""}, "name"),
    ],
)
def test_a_malformed_platform_is_refused_naming_the_field(overrides, field):
    with pytest.raises(PlatformError) as refused:
        add_b(**overrides)
    assert field in refused.value.fields
    assert not Platform.objects.filter(component_appid="wx00000000000000b2").exists()


def test_the_default_platform_and_a_taken_appid_cannot_be_added(settings):
    with pytest.raises(PlatformError, match="default platform"):
        add_b(component_appid=settings.WECHAT_COMPONENT_APPID)
    add_b()
    with pytest.raises(PlatformError, match="exists already"):
        add_b(name="another name")


def test_rotating_the_aes_key_keeps_the_replaced_one_for_reading_until_forgotten():
    platform = add_b()
    platform_rotate_key(platform=platform, aes_key="D" * 43, actor=ACTOR)
    platform.refresh_from_db()
    secrets = platform_secrets(platform)
    assert secrets.aes_key == "D" * 43 and secrets.previous_aes_keys == (AES,)
    assert platform.key_rotated_at is not None
    with pytest.raises(PlatformError, match="current"):
        platform_rotate_key(platform=platform, aes_key="D" * 43, actor=ACTOR)
    assert platform_forget_previous_key(platform=platform, actor=ACTOR)
    platform.refresh_from_db()
    assert platform_secrets(platform).previous_aes_keys == ()
    assert AuditEvent.objects.filter(action="platform.key_rotated").count() == 2


def test_the_default_platforms_credentials_change_in_the_environment_only():
    default = platform_default()
    with pytest.raises(PlatformError, match="environment"):
        platform_rotate_key(platform=default, aes_key="D" * 43, actor=ACTOR)
    with pytest.raises(PlatformError, match="environment"):
        platform_update(platform=default, appsecret="e" * 32, actor=ACTOR)
    with pytest.raises(PlatformError, match="environment"):
        platform_retire(platform=default, actor=ACTOR)


def test_a_reset_secret_or_new_token_is_stored_and_a_rename_audited_without_values():
    platform = add_b()
    platform_update(platform=platform, appsecret="f" * 32, token="NewToken9", name="B (renamed)", actor=ACTOR)
    platform.refresh_from_db()
    assert platform.name == "B (renamed)"
    assert (platform_secrets(platform).appsecret, platform_secrets(platform).token) == ("f" * 32, "NewToken9")
    event = AuditEvent.objects.get(action="platform.updated")
    assert sorted(event.detail["changed"]) == ["appsecret", "name", "token"] and "f" * 32 not in str(event.detail)


def test_retiring_a_platform_deactivates_its_merchants_only_and_refuses_its_lookups(make_authorizer):
    platform = add_b()
    theirs = make_authorizer(platform=platform)
    ours = make_authorizer()
    from authorizers.api_keys import api_key_issue

    api_key_issue(authorizer=theirs, actor=ACTOR)
    result = platform_retire(platform=platform, actor=ACTOR)
    assert result.changed and result.merchants_deactivated == 1
    theirs.refresh_from_db()
    ours.refresh_from_db()
    assert theirs.status == AuthorizerStatus.DEACTIVATED and not theirs.refresh_token_ciphertext
    assert ours.status == AuthorizerStatus.ACTIVE
    assert not ApiKey.objects.filter(authorizer=theirs, revoked_at__isnull=True).exists()
    platform.refresh_from_db()
    assert platform.status == PlatformStatus.RETIRED and platform.retired_at is not None
    assert platform not in platforms_active()
    with pytest.raises(PlatformRetired) as refused:
        platform_get(platform.component_appid)
    assert refused.value.status == 410
    with pytest.raises(UnknownPlatform) as unknown:
        platform_get("wx0000000000000404")
    assert unknown.value.status == 404
    assert not platform_retire(platform=platform, actor=ACTOR).changed


def test_key_rotation_of_field_encryption_re_encrypts_the_platforms_secrets(settings):
    platform = add_b()
    old = settings.FIELD_ENCRYPTION_KEYS
    new_key = "bmV3a2V5bmV3a2V5bmV3a2V5bmV3a2V5bmV3a2V5MDA="
    settings.FIELD_ENCRYPTION_KEYS = f"k2:{new_key},{old}"
    counts = encryption_keys_rotate()
    assert counts["authorizers.Platform.aes_key_ciphertext"] == 1
    settings.FIELD_ENCRYPTION_KEYS = f"k2:{new_key}"
    platform.refresh_from_db()
    assert fieldcrypto.key_id(platform.aes_key_ciphertext) == "k2"
    assert platform_secrets(platform).aes_key == AES


# --- the commands: secrets from the environment or stdin, never argv ---------------------------


def test_platform_add_reads_its_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("PLATFORM_APPSECRET", SECRET)
    monkeypatch.setenv("PLATFORM_TOKEN", TOKEN)
    monkeypatch.setenv("PLATFORM_AES_KEY", AES)
    out = io.StringIO()
    call_command("platform_add", "product B", "--component-appid", "wx00000000000000b2", stdout=out)
    assert "/wechat/platforms/wx00000000000000b2/events/" in out.getvalue()
    assert SECRET not in out.getvalue() and AES not in out.getvalue()
    assert platform_secrets(Platform.objects.get(component_appid="wx00000000000000b2")).token == TOKEN


def test_platform_add_reads_its_secrets_from_stdin(monkeypatch):
    lines = f"# platform B\nPLATFORM_APPSECRET={SECRET}\nPLATFORM_TOKEN={TOKEN}\nPLATFORM_AES_KEY='{AES}'\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    call_command(
        "platform_add", "product B", "--component-appid", "wx00000000000000b2", "--stdin", stdout=io.StringIO()
    )
    assert platform_secrets(Platform.objects.get(component_appid="wx00000000000000b2")).aes_key == AES


def test_platform_add_has_no_way_to_take_a_secret_on_the_command_line(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    for name in ("PLATFORM_APPSECRET", "PLATFORM_TOKEN", "PLATFORM_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CommandError, match="PLATFORM_APPSECRET"):
        call_command("platform_add", "product B", "--component-appid", "wx00000000000000b2")
    with pytest.raises(CommandError):
        call_command("platform_add", "product B", "--component-appid", "wx00000000000000b2", "--appsecret", SECRET)
    assert not Platform.objects.filter(component_appid="wx00000000000000b2").exists()


def test_platform_rotate_key_and_retire_commands(monkeypatch, make_authorizer):
    platform = add_b()
    make_authorizer(platform=platform)
    monkeypatch.setenv("PLATFORM_AES_KEY", "E" * 43)
    call_command("platform_rotate_key", platform.component_appid, stdout=io.StringIO())
    platform.refresh_from_db()
    assert platform_secrets(platform).previous_aes_keys == (AES,)
    call_command("platform_rotate_key", platform.component_appid, "--forget-previous", stdout=io.StringIO())
    platform.refresh_from_db()
    assert platform_secrets(platform).previous_aes_keys == ()
    out = io.StringIO()
    call_command("platform_retire", platform.component_appid, stdout=out)
    assert "1 merchants would be deactivated" in out.getvalue()
    platform.refresh_from_db()
    assert platform.is_active  # without --yes nothing happens
    call_command("platform_retire", platform.component_appid, "--yes", stdout=io.StringIO())
    platform.refresh_from_db()
    assert not platform.is_active
    with pytest.raises(CommandError, match="environment"):
        call_command("platform_retire", platform_default().component_appid, "--yes", stdout=io.StringIO())
