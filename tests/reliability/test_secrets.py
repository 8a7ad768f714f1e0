"""Secrets at rest, field by field: every encrypted column of every table is bound to its row and
field, fails with the wrong key, and leaves the old key id behind after a rotation.

The fault suite (test_faults.py) adds the rest on the real stack: no secret in a database dump, a log
line or a broker message, and the service running after the old key is removed.
"""

from __future__ import annotations

import base64
import os

import pytest
from django.core.management import call_command

from authorizers import fieldcrypto
from authorizers.models import ComponentEvent
from authorizers.rotation import _FIELDS as ENCRYPTED_FIELDS
from authorizers.tokens import event_code_ctx
from tests.reliability import figures

pytestmark = [pytest.mark.django_db, pytest.mark.reliability]


def _key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def stored_secrets(make_authorizer, component_ready) -> list[tuple[object, str]]:
    """Two rows (where a table has more than one) of every model with an encrypted field."""
    a, b = make_authorizer(), make_authorizer()
    for appid in (a.appid, b.appid):
        ComponentEvent.objects.create(
            dedupe_key=f"key-{appid}",
            info_type="authorized",
            authorizer_appid=appid,
            create_time=a.authorized_at,
            authorization_code_ciphertext=fieldcrypto.encrypt(
                f"queryauthcode@@@{appid}", context=event_code_ctx("authorized", appid)
            ),
        )
    return [(row, field) for model, field, _ in ENCRYPTED_FIELDS for row in model.objects.all()]


def test_every_encrypted_field_decrypts_only_in_its_own_row_and_field(stored_secrets) -> None:
    contexts = {(model, field): context_of for model, field, context_of in ENCRYPTED_FIELDS}
    checked = 0
    for row, field in stored_secrets:
        stored = getattr(row, field)
        if not stored:
            continue
        own = contexts[(type(row), field)](row)
        assert fieldcrypto.decrypt(stored, context=own)
        for other_row, other_field in stored_secrets:
            if (other_row.pk, other_field, type(other_row)) == (row.pk, field, type(row)):
                continue
            other = contexts[(type(other_row), other_field)](other_row)
            if other == own:
                continue
            with pytest.raises(fieldcrypto.FieldDecryptionError):
                fieldcrypto.decrypt(stored, context=other)
            checked += 1
    figures.record("secrets", ciphertexts_copied_to_another_row_or_field=checked, copies_that_decrypted=0)
    assert checked > 10


def test_every_encrypted_field_fails_with_a_wrong_key_of_the_same_id(stored_secrets, settings) -> None:
    values = [(row, field, getattr(row, field)) for row, field in stored_secrets if getattr(row, field)]
    contexts = {(model, field): context_of for model, field, context_of in ENCRYPTED_FIELDS}
    kid = fieldcrypto.key_id(values[0][2])
    settings.FIELD_ENCRYPTION_KEYS = _key(kid)
    for row, field, stored in values:
        with pytest.raises(fieldcrypto.FieldDecryptionError):
            fieldcrypto.decrypt(stored, context=contexts[(type(row), field)](row))


def test_after_rotation_no_field_is_under_the_old_key_and_all_read_without_it(stored_secrets, settings) -> None:
    contexts = {(model, field): context_of for model, field, context_of in ENCRYPTED_FIELDS}
    before = {
        (type(row), row.pk, field): fieldcrypto.decrypt(getattr(row, field), context=contexts[(type(row), field)](row))
        for row, field in stored_secrets
        if getattr(row, field)
    }
    old = settings.FIELD_ENCRYPTION_KEYS
    old_kid = old.split(":", 1)[0]
    new = _key("rotated")
    settings.FIELD_ENCRYPTION_KEYS = f"{new},{old}"
    call_command("rotate_encryption_keys", verbosity=0)
    settings.FIELD_ENCRYPTION_KEYS = new  # the old key is gone
    for model, field, context_of in ENCRYPTED_FIELDS:
        for row in model.objects.exclude(**{field: ""}):
            stored = getattr(row, field)
            assert fieldcrypto.key_id(stored) == "rotated", f"{model.__name__}.{field} still under {old_kid}"
            assert fieldcrypto.decrypt(stored, context=context_of(row)) == before[(model, row.pk, field)]
