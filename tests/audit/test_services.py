"""The audit log's only writer: who acted (Actor), one shape for every line, single and bulk writes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.actions import AuditAction
from audit.models import ActorKind, AuditEvent
from audit.services import Actor, audit_event, audit_record, audit_record_many

pytestmark = pytest.mark.django_db


def test_each_kind_of_actor_is_named_for_who_asked():
    staff = get_user_model().objects.create_user("ops1", password="x", is_staff=True)
    assert Actor.system("token refresh") == Actor(kind=ActorKind.SYSTEM, id="", label="token refresh")
    assert Actor.system() == Actor(kind=ActorKind.SYSTEM, label="system")
    assert Actor.schedule("nightly") == Actor(kind=ActorKind.SCHEDULE, label="nightly")
    assert Actor.staff(staff) == Actor(kind=ActorKind.STAFF, id=str(staff.pk), label="ops1")
    assert Actor.wechat() == Actor(kind=ActorKind.WECHAT, label="wechat")


def test_a_recorded_event_keeps_every_field_it_was_given():
    event = audit_record(
        actor=Actor(kind=ActorKind.API_KEY, id="7", label="kfp_ab…"),
        action=AuditAction.DELETION_REQUESTED,
        authorizer_appid="wx0123456789abcdef",
        subject="kf1@shop",
        outcome="pending",
        errcode=65401,
        errmsg="invalid custom service account rid: 1-2",
        rid="1-2",
        detail={"deletion_id": 3},
    )
    stored = AuditEvent.objects.get()
    assert stored.pk == event.pk and stored.at is not None
    assert (
        stored.actor_kind,
        stored.actor_id,
        stored.actor_label,
        stored.action,
        stored.authorizer_appid,
        stored.subject,
        stored.outcome,
        stored.errcode,
        stored.errmsg,
        stored.rid,
        stored.detail,
    ) == (
        "api_key",
        "7",
        "kfp_ab…",
        "deletion.requested",
        "wx0123456789abcdef",
        "kf1@shop",
        "pending",
        65401,
        "invalid custom service account rid: 1-2",
        "1-2",
        {"deletion_id": 3},
    )


def test_overlong_text_is_cut_to_its_column_and_missing_values_are_empty_not_null():
    event = audit_event(
        actor=Actor(kind=ActorKind.SYSTEM, id="i" * 100, label="l" * 200),
        action=AuditAction.WECHAT_KF_DELETE_CALLED,
        subject="s" * 300,
        errmsg="e" * 400,
        rid="r" * 100,
    )
    assert (len(event.actor_id), len(event.actor_label), len(event.subject)) == (64, 150, 128)
    assert (len(event.errmsg), len(event.rid)) == (255, 64)
    bare = audit_event(actor=Actor.system(), action=AuditAction.AUDIT_PRUNED, rid=None)
    assert (bare.errmsg, bare.rid, bare.detail, bare.errcode, bare.subject) == ("", "", {}, None, "")
    assert AuditEvent.objects.count() == 0  # audit_event builds; only audit_record(_many) saves
    event.save()
    assert AuditEvent.objects.get().subject == "s" * 128


def test_a_bulk_write_stores_every_line_in_one_insert(django_assert_num_queries):
    events = (
        audit_event(actor=Actor.system("deletions"), action=AuditAction.DELETION_REQUESTED, subject=f"kf{i}@shop")
        for i in range(25)
    )
    with django_assert_num_queries(1):
        audit_record_many(events)
    assert sorted(AuditEvent.objects.values_list("subject", flat=True)) == sorted(f"kf{i}@shop" for i in range(25))


def test_the_log_reads_newest_first():
    first = audit_record(actor=Actor.system(), action=AuditAction.DELETION_REQUESTED)
    second = audit_record(actor=Actor.system(), action=AuditAction.DELETION_CANCELLED)
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [second.pk, first.pk]
    assert "system:system deletion.requested" in str(first)
