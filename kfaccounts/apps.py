from django.apps import AppConfig


class KfaccountsConfig(AppConfig):
    name = "kfaccounts"
    verbose_name = "Customer-service accounts"
