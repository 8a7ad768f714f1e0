from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KfaccountsConfig(AppConfig):
    name = "kfaccounts"
    verbose_name = _("Kf accounts and deletions")

    def ready(self) -> None:
        # Connects kfaccounts' part of a merchant's deactivation (authorizers.deactivation).
        from kfaccounts.services import interventions  # noqa: F401
