from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from authorizers.models import Platform
from authorizers.platforms import PlatformError, platform_retire


class Command(BaseCommand):
    help = (
        "Stop serving a platform: its URLs refuse pushes and authorizations, and each of its merchants is "
        "deactivated (tokens forgotten, API keys revoked, pending deletions cancelled). History stays. "
        "Cannot be undone from here."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("component_appid")
        parser.add_argument("--yes", action="store_true", help="do it (without it, say what would happen)")

    def handle(self, *args: Any, component_appid: str, yes: bool, **options: Any) -> None:
        platform = Platform.objects.filter(component_appid=component_appid).first()
        if platform is None:
            raise CommandError(f"no platform with component appid {component_appid!r}")
        merchants = platform.authorizers.exclude(status="deactivated").count()
        if not yes:
            self.stdout.write(
                f"{platform}: {merchants} merchants would be deactivated and its URLs would refuse everything. "
                "Run again with --yes to retire it."
            )
            return
        try:
            result = platform_retire(platform=platform, actor=Actor.system("platform_retire command"))
        except PlatformError as exc:
            raise CommandError(exc.message) from None
        state = "retired" if result.changed else "was retired already"
        self.stdout.write(
            self.style.SUCCESS(f"{platform} {state}; {result.merchants_deactivated} merchants deactivated")
        )
