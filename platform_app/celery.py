"""The Celery app: `celery -A platform_app worker` and `celery -A platform_app beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_app.settings")

app = Celery("platform_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
