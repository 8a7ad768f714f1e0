"""The Celery app: `celery -A platform_app worker` and `celery -A platform_app beat`."""

import os
from typing import Any

from celery import Celery, bootsteps
from celery.signals import task_postrun, task_prerun

from platform_app import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_app.settings")
broker.install()

app = Celery("platform_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _close_old_connections(sender: Any = None, **_: Any) -> None:
    """Before and after every task: drop a database connection that broke or outlived CONN_MAX_AGE.

    Django does this around every web request; Celery's own fix-up does it only every
    CELERY_DB_REUSE_MAX tasks, so a worker thread whose connection died with a PostgreSQL restart
    kept failing until then. Here it costs nothing on a healthy connection (with CONN_HEALTH_CHECKS,
    one ``SELECT 1`` at the task's first query). Not for eager tasks: they run inside the caller's
    transaction (the tests'), whose connection must stay.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


task_prerun.connect(_close_old_connections, weak=False, dispatch_uid="close-old-connections-prerun")
task_postrun.connect(_close_old_connections, weak=False, dispatch_uid="close-old-connections-postrun")


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
