from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = _("Observability")

    def ready(self) -> None:
        # Celery's task signals carry the ids a task was given into the log context of its thread.
        from observability import tasklog

        tasklog.connect()
