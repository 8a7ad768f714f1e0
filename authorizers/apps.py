from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthorizersConfig(AppConfig):
    name = "authorizers"
    verbose_name = _("Merchants")
