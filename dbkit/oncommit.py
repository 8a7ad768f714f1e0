"""The one way services send background work: after the current transaction commits.

``send_on_commit(task.delay, id)`` runs ``task.delay(id)`` once the transaction that wrote the rows
commits (at once outside a transaction), so a worker never looks for a row its caller may still roll
back; a rollback drops the send with the rows. Tasks take ids: the row is the truth, and a sweeper
re-sends what a crash or a lost message left behind, so a send is never the only copy of the work.

``key``: the same work asked for twice in one transaction (two deletions of one merchant, a loop
of syncs) is sent once: a send whose key is already waiting for this transaction's commit is
dropped. Keys are per transaction; once it has committed, the next send goes out again.

Each app's ``dispatch.py`` names its sends (``deletions_send``, ``cleanup_run_send``…) on top of this
and is the only module that imports the app's tasks from its services (imported on first use: tasks
import services, so services cannot import tasks at import time).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

from django.db import connections, transaction
from django.db.utils import DEFAULT_DB_ALIAS


class AfterCommit(partial[Any]):
    """A send waiting for the commit: ``func(*args, **keywords)``, and its de-duplication ``key``."""

    key: Hashable | None = None
    ran: bool = False

    def __call__(self, /, *args: Any, **keywords: Any) -> Any:
        self.ran = True
        return super().__call__(*args, **keywords)


def send_on_commit(
    send: Callable[..., object], /, *args: Any, key: Hashable | None = None, using: str | None = None, **kwargs: Any
) -> None:
    """Call ``send(*args, **kwargs)`` after the current transaction commits (now, outside one)."""
    alias = using or DEFAULT_DB_ALIAS
    connection = connections[alias]
    if key is not None and connection.in_atomic_block and _waiting(connection, key):
        return
    callback = AfterCommit(send, *args, **kwargs)
    callback.key = key
    transaction.on_commit(callback, using=alias)


def _waiting(connection: Any, key: Hashable) -> bool:
    # Django keeps the transaction's callbacks as (savepoint ids, callback, robust); a savepoint
    # rolled back has taken its own out already, so what is left here will run at the commit.
    # (Tests that run the callbacks themselves leave them in the list: those that ran do not count.)
    return any(
        isinstance(entry[1], AfterCommit) and entry[1].key == key and not entry[1].ran
        for entry in connection.run_on_commit
    )
