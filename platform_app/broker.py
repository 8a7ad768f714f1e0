"""The broker transports, each with one fix kombu lacks.

Filesystem (the embedded mode): messages that appear whole.

kombu's filesystem transport creates a message file, then locks and writes it; a worker polling the
folder does not lock, so it can take the file in between, read nothing, and stop with a
JSONDecodeError (seen under load in the end-to-end suite). Writing under a name the reader skips
(``….msg.part``) and renaming it into place makes every message appear atomically.

Redis: a worker survives the broker going away. kombu 5.7's Redis transport drops the connection's
client before it closes the channels when the broker connection is lost; closing a channel that holds
unacknowledged messages then tries to put them back through that client and dies with AttributeError,
which Celery treats as unrecoverable: the worker exits (the fault suite's Redis restarts, every time a
task was in flight). Re-raised as the connection error it is, Celery reconnects as it always has; the
messages come back after the visibility timeout, and deletions do not wait for that (the sweeper
re-sends their rows).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

import redis
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's own stubs disagree on this signature (the base channel vs the filesystem one): follow the latter.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # the reader takes only names ending in ".<queue>.msg"
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


class RedisQoS(kombu_redis.QoS):
    # Every path that reaches the dropped client: putting unacked messages back when the channel
    # closes, and acking or rejecting a message of the lost connection once the worker reconnected.
    def restore_unacked(self, client: Any = None) -> Any:
        try:
            return super().restore_unacked(client)
        except AttributeError as exc:
            raise redis.exceptions.ConnectionError("the broker connection is gone") from exc

    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)
        except AttributeError as exc:
            raise redis.exceptions.ConnectionError("the broker connection is gone") from exc

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except AttributeError as exc:
            raise redis.exceptions.ConnectionError("the broker connection is gone") from exc


class RedisChannel(kombu_redis.Channel):
    QoS = RedisQoS


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


def install() -> None:
    """redis:// (and rediss://) broker URLs use RedisTransport (the filesystem one is named in settings)."""
    TRANSPORT_ALIASES["redis"] = "platform_app.broker:RedisTransport"
    TRANSPORT_ALIASES["rediss"] = "platform_app.broker:RedisTransport"
