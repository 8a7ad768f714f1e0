from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KfaccountsConfig(AppConfig):
    name = "kfaccounts"
    verbose_name = _("Kf accounts and deletions")

    def ready(self) -> None:
        # Connects kfaccounts' receivers: its part of a merchant's deactivation (interventions) and
        # the resumption of held deletions when the platform is unblocked (sweeper).
        from kfaccounts.services import interventions, sweeper  # noqa: F401
