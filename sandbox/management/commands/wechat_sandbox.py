"""`manage.py wechat_sandbox --port N`: the WeChat sandbox configured from the platform's settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from sandbox import cli

EVENTS_PATH = "/wechat/component/events/"


def settings_fallbacks(options: dict[str, Any], source: Any = settings) -> dict[str, Any]:
    """The platform's own credentials, so the sandbox and the platform agree without repeating them."""
    fallbacks: dict[str, Any] = {
        "component_appid": getattr(source, "WECHAT_COMPONENT_APPID", None),
        "component_appsecret": getattr(source, "WECHAT_COMPONENT_APPSECRET", None),
        "component_token": getattr(source, "WECHAT_COMPONENT_TOKEN", None),
        "component_aes_key": getattr(source, "WECHAT_COMPONENT_AES_KEY", None),
    }
    # Where to push comes from --platform-url, else the sandbox's own --push-url / SANDBOX_PUSH_URL:
    # the platform's settings have no such value.
    if options.get("platform_url"):
        fallbacks["push_url"] = options["platform_url"].rstrip("/") + EVENTS_PATH
        fallbacks["authorization_domain"] = options["platform_url"]
    return fallbacks


class Command(BaseCommand):
    help = "Run the WeChat sandbox (a WeChat API simulator) with this platform's component credentials."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)
        parser.add_argument(
            "--platform-url",
            help=f"the platform's base URL, e.g. http://127.0.0.1:8000; pushes go to its {EVENTS_PATH}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cli.run(cli.config_from_options(options, fallbacks=settings_fallbacks(options)))
