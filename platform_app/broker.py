"""Celery's filesystem broker (the embedded mode), with messages that appear whole.

kombu's filesystem transport creates a message file, then locks and writes it; a worker polling the
folder does not lock, so it can take the file in between, read nothing, and stop with a
JSONDecodeError (seen under load in the end-to-end suite). Writing under a name the reader skips
(``….msg.part``) and renaming it into place makes every message appear atomically.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
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
