"""django-celery-beat's schedule admin, with its actions declaring the permission they need.

Its own actions declare none, so any staff user who can see the schedules (a viewer) could run,
enable or disable them. Same actions, same behaviour, now for users who may change schedules.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from console.admin.helpers import console_action


class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    @console_action(description=BeatPeriodicTaskAdmin.enable_tasks.short_description, permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().enable_tasks(request, queryset)

    @console_action(description=BeatPeriodicTaskAdmin.disable_tasks.short_description, permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().disable_tasks(request, queryset)

    @console_action(description=BeatPeriodicTaskAdmin.toggle_tasks.short_description, permissions=["change"])
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().toggle_tasks(request, queryset)

    @console_action(description=BeatPeriodicTaskAdmin.run_tasks.short_description, permissions=["change"])
    def run_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Beat's own refusal is an f-string gettext cannot see: the same check, in the staff's language.
        self.celery_app.loader.import_default_modules()
        unknown = [task.task for task in queryset if task.task not in self.celery_app.tasks]
        if unknown:
            self.message_user(
                request, gettext("task %(name)s not found: nothing was run") % {"name": unknown[0]}, messages.ERROR
            )
            return
        super().run_tasks(request, queryset)


if admin.site.is_registered(PeriodicTask):
    admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
