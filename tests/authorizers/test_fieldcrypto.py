"""Secrets at rest: AES-256-GCM bound to row and field, key ids, rotation, failing closed."""

from __future__ import annotations

import base64
import io
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from authorizers import fieldcrypto
from authorizers.tokens import authorizer_token_get, refresh_token_of


def _key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def test_round_trip_and_no_plaintext_in_the_stored_value():
    stored = fieldcrypto.encrypt("secret-refresh-token", context="authorizer:wx1:refresh_token")
    assert "secret-refresh-token" not in stored
    assert fieldcrypto.decrypt(stored, context="authorizer:wx1:refresh_token") == "secret-refresh-token"


def test_ciphertext_moved_to_another_row_or_field_fails_closed():
    stored = fieldcrypto.encrypt("secret", context="authorizer:wx1:refresh_token")
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        fieldcrypto.decrypt(stored, context="authorizer:wx2:refresh_token")
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        fieldcrypto.decrypt(stored, context="authorizer:wx1:access_token")


def test_wrong_key_fails_closed(settings):
    stored = fieldcrypto.encrypt("secret", context="c")
    kid = fieldcrypto.key_id(stored)
    settings.FIELD_ENCRYPTION_KEYS = _key(kid)  # same id, different key material
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        fieldcrypto.decrypt(stored, context="c")


def test_unknown_key_id_fails_closed(settings):
    stored = fieldcrypto.encrypt("secret", context="c")
    settings.FIELD_ENCRYPTION_KEYS = _key("other")
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        fieldcrypto.decrypt(stored, context="c")


def test_tampered_ciphertext_fails_closed():
    stored = fieldcrypto.encrypt("secret", context="c")
    flipped = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        fieldcrypto.decrypt(flipped, context="c")


@pytest.mark.parametrize(
    "spec", ["", "nokey", "k1:notbase64!!", "k1:" + base64.b64encode(b"short").decode(), f"{_key('k1')},{_key('k1')}"]
)
def test_malformed_key_lists_are_refused_naming_the_variable(spec):
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        fieldcrypto.parse_keys(spec)


@pytest.mark.django_db
def test_rotate_encryption_keys_reencrypts_every_row_under_the_new_primary(settings, make_authorizer, component_ready):
    merchants = [make_authorizer() for _ in range(3)]
    old = settings.FIELD_ENCRYPTION_KEYS
    settings.FIELD_ENCRYPTION_KEYS = f"{_key('k9')},{old}"
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    for merchant in merchants:
        merchant.refresh_from_db()
        assert fieldcrypto.key_id(merchant.refresh_token_ciphertext) == "k9"
        assert fieldcrypto.key_id(merchant.access_token_ciphertext) == "k9"
    # Old key removed: everything still decrypts, so nothing depended on it any more.
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS.split(",")[0]
    for merchant in merchants:
        assert refresh_token_of(merchant) == f"REFRESH_{merchant.appid}"
        assert authorizer_token_get(authorizer_id=merchant.pk) == f"ACCESS_{merchant.appid}"


@pytest.mark.django_db
def test_no_token_is_stored_in_plaintext_anywhere(make_authorizer, component_ready):
    from django.db import connection

    merchant = make_authorizer()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                text = " ".join(map(str, row))
                assert f"ACCESS_{merchant.appid}" not in text, table
                assert f"REFRESH_{merchant.appid}" not in text, table
                assert "COMPONENT_TOKEN" not in text, table
