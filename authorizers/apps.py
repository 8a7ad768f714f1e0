from django.apps import AppConfig


class AuthorizersConfig(AppConfig):
    name = "authorizers"
    verbose_name = "Merchants (authorizers)"
