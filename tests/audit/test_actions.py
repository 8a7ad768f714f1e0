"""The audit vocabulary: one naming scheme, nothing written outside it, old lines renamed."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from audit.actions import NAME, RENAMED, AuditAction
from audit.models import AuditEvent
from audit.services import Actor, audit_event, audit_record

pytestmark = pytest.mark.django_db

vocabulary_migration = importlib.import_module("audit.migrations.0004_action_vocabulary")


def test_every_action_is_entity_dot_what_happened_and_named_once():
    values = [action.value for action in AuditAction]
    assert len(values) == len(set(values))
    assert [v for v in values if not NAME.fullmatch(v)] == []
    # The member's name is its value, spelled as a constant: a reader finds one from the other.
    assert [a.name for a in AuditAction if a.name != a.value.upper().replace(".", "_")] == []


@pytest.mark.parametrize("action", ["deletion.exploded", "platform.alert_raised", "x", ""])
def test_an_action_outside_the_vocabulary_is_refused_before_anything_is_written(action):
    with pytest.raises(ValueError):
        audit_record(actor=Actor.system(), action=action)
    with pytest.raises(ValueError):
        audit_event(actor=Actor.system(), action=action)
    assert not AuditEvent.objects.exists()


def test_a_vocabulary_member_or_its_plain_value_is_written_as_the_value():
    assert audit_record(actor=Actor.system(), action=AuditAction.ALERT_RAISED).action == "alert.raised"
    assert audit_record(actor=Actor.system(), action="alert.cleared").action == "alert.cleared"  # type: ignore[arg-type]


def test_the_migration_renames_every_old_name_to_the_vocabulary_and_back(monkeypatch):
    assert {old: new.value for old, new in RENAMED.items()} == vocabulary_migration.RENAMED
    assert set(RENAMED.values()) <= set(AuditAction)
    assert not set(RENAMED) & set(AuditAction.values)
    monkeypatch.setattr(vocabulary_migration, "BATCH", 2)  # several batches per name
    for old in RENAMED:
        AuditEvent.objects.bulk_create([AuditEvent(action=old, actor_kind="system") for _ in range(3)])
    AuditEvent.objects.create(action="deletion.requested", actor_kind="system")

    vocabulary_migration.forward(apps, None)
    stored = set(AuditEvent.objects.values_list("action", flat=True))
    assert stored == {new.value for new in RENAMED.values()} | {"deletion.requested"}
    assert all(AuditEvent.objects.filter(action=new).count() == 3 for new in RENAMED.values())

    vocabulary_migration.backward(apps, None)
    assert set(AuditEvent.objects.values_list("action", flat=True)) == set(RENAMED) | {"deletion.requested"}
