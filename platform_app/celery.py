"""The Celery app: `celery -A platform_app worker` and `celery -A platform_app beat`."""

import os
from typing import Any

from celery import Celery, bootsteps

from platform_app import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_app.settings")
broker.install()

app = Celery("platform_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class WakeTheEventLoop(bootsteps.StartStopStep):
    """Tick the worker's event loop every 50 ms.

    With the Redis transport the worker stops polling the queue while its prefetch window is full,
    and a thread-pool task finishing (its ack comes from the pool's thread) does not wake the loop:
    it sleeps until its next timer, kombu's 10-second restore check. A thread-pool worker then ran
    `concurrency` tasks per ten seconds (20 trivial tasks on 2 threads: 73 s). A timer that does
    nothing makes the loop look at the queue again as soon as a slot is free (20 tasks: < 1 s).
    """

    requires = ("celery.worker.components:Hub",)

    def start(self, worker: Any) -> None:
        if worker.hub is not None:
            worker.hub.call_repeatedly(0.05, _tick)


def _tick() -> None:
    """Nothing to do: being called is the point (the loop then re-arms its queue polling)."""


app.steps["worker"].add(WakeTheEventLoop)
