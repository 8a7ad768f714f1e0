"""The embedded broker: whole messages only, each delivered once, queues kept apart."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from platform_app.broker import Transport


@pytest.fixture
def channel(tmp_path: Path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    with Connection("filesystem://", transport=Transport, transport_options=options) as connection:
        yield connection.channel(), folder


def test_a_message_appears_only_once_it_is_whole(channel):
    chan, folder = channel
    chan._put("celery", {"body": "x" * 10_000})
    # Written under a name the reader skips, then renamed into place: no ".part" is ever left behind.
    assert [name.endswith(".celery.msg") for name in os.listdir(folder)] == [True]
    assert chan._get("celery") == {"body": "x" * 10_000}
    with pytest.raises(Empty):
        chan._get("celery")


def test_messages_of_other_queues_are_left_alone_and_put_get_round_trips(channel):
    chan, folder = channel
    chan._put("webhooks", {"n": 1})
    chan._put("celery", {"n": 2})
    assert chan._get("celery") == {"n": 2}
    assert [name.endswith(".webhooks.msg") for name in os.listdir(folder)] == [True]
    assert chan._get("webhooks") == {"n": 1}


def test_consumers_racing_for_many_messages_deliver_each_exactly_once(channel):
    chan, _ = channel
    for n in range(300):
        chan._put("celery", {"n": n})
    got: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        while True:
            try:
                message = chan._get("celery")
            except Empty:
                return
            with lock:
                got.append(message["n"])

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(300))
