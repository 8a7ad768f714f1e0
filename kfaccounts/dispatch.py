"""How the kf-account services start background work: named sends on ``dbkit.oncommit``, ids only.

Tasks call services, so services cannot import the tasks module at import time; the functions here
are the one place that does, when first called.
"""

from __future__ import annotations

from collections.abc import Sequence

from audit.services import Actor
from dbkit.oncommit import send_on_commit


def deletions_send(ids: Sequence[int] = (), *, authorizer_id: int | None = None, backlog: bool = False) -> None:
    """After commit, enqueue the batch of each merchant these deletions belong to (``tasks.batch_enqueue``).

    ``authorizer_id``: they are all that merchant's (one request's, or its next batch), so no query
    is needed to group them; ``backlog``: that merchant now has more than one batch of work, and
    waits its turn.
    """
    from kfaccounts import tasks  # tasks → services → dispatch: imported on use, here only

    # No de-duplication key: batch_enqueue's queued mark already sends one message per waiting merchant.
    send_on_commit(tasks.batch_enqueue, deletion_ids=list(ids), authorizer_id=authorizer_id, backlog=backlog)


def kf_accounts_sync_send(*, authorizer_id: int, actor: Actor) -> None:
    """After commit, the sync task (only ``services.kf_accounts_sync_request`` calls this: it de-duplicates
    through the merchant's ``kf_sync_queued_at``, across transactions and processes)."""
    from kfaccounts import tasks

    send_on_commit(
        tasks.sync_kf_accounts.delay,
        authorizer_id,
        actor.kind,
        actor.label,
        actor.id,
    )
