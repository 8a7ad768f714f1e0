# Loading the Celery app with Django makes `shared_task` and `delay_on_commit` bind to it.
from platform_app.celery import app as celery_app

__all__ = ("celery_app",)
