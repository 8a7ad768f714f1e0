"""dbkit.oncommit: sends run after the commit, never after a rollback, once per key."""

from __future__ import annotations

import pytest
from django.db import transaction

from dbkit.oncommit import send_on_commit

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_send_waits_for_the_commit_and_a_rollback_drops_it():
    sent: list[int] = []
    with transaction.atomic():
        send_on_commit(sent.append, 1)
        assert sent == []
    assert sent == [1]
    with pytest.raises(RuntimeError), transaction.atomic():
        send_on_commit(sent.append, 2)
        raise RuntimeError
    assert sent == [1]


def test_outside_a_transaction_it_sends_at_once():
    sent: list[int] = []
    send_on_commit(sent.append, 3)
    assert sent == [3]


def test_a_key_sends_once_per_transaction_and_again_in_the_next():
    sent: list[str] = []
    for _ in range(2):
        with transaction.atomic():
            send_on_commit(sent.append, "sync 7", key=("sync", 7))
            send_on_commit(sent.append, "sync 7", key=("sync", 7))
            send_on_commit(sent.append, "sync 8", key=("sync", 8))
    assert sent == ["sync 7", "sync 8", "sync 7", "sync 8"]


def test_a_key_sent_in_a_rolled_back_savepoint_can_be_sent_again():
    sent: list[str] = []
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            send_on_commit(sent.append, "a", key="a")
            raise RuntimeError
        send_on_commit(sent.append, "a", key="a")
    assert sent == ["a"]
