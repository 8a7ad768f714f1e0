"""How the webhook services start background work: named sends on ``dbkit.oncommit``, ids only.

Tasks call services, so the tasks module is imported here, on first use, only.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbkit.oncommit import send_on_commit


def deliveries_send(ids: Sequence[int]) -> None:
    from webhooks import tasks  # tasks → services → dispatch: imported on use, here only

    send_on_commit(tasks.dispatch_deliveries, list(ids))
