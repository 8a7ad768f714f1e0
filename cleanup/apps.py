from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CleanupConfig(AppConfig):
    name = "cleanup"
    verbose_name = _("Scheduled cleanup and housekeeping")
