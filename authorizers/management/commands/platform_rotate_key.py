from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from authorizers.management.commands._platform_secrets import secrets_read
from authorizers.models import Platform
from authorizers.platforms import PlatformError, platform_forget_previous_key, platform_rotate_key


class Command(BaseCommand):
    help = (
        "Rotate a platform's EncodingAESKey: the new key (PLATFORM_AES_KEY in the environment, or a "
        "PLATFORM_AES_KEY=value line on stdin with --stdin) becomes current and the replaced one is still read "
        "until --forget-previous. The default platform's keys are in the environment "
        "(WECHAT_COMPONENT_AES_KEY, WECHAT_COMPONENT_PREVIOUS_AES_KEYS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("component_appid")
        parser.add_argument("--stdin", action="store_true", help="read PLATFORM_AES_KEY=value from stdin")
        parser.add_argument(
            "--forget-previous",
            action="store_true",
            help="instead: stop reading pushes encrypted with the previous key (once WeChat uses the new one)",
        )

    def handle(self, *args: Any, component_appid: str, stdin: bool, forget_previous: bool, **options: Any) -> None:
        platform = Platform.objects.filter(component_appid=component_appid).first()
        if platform is None:
            raise CommandError(f"no platform with component appid {component_appid!r}")
        actor = Actor.system("platform_rotate_key command")
        try:
            if forget_previous:
                forgotten = platform_forget_previous_key(platform=platform, actor=actor)
                self.stdout.write("previous key forgotten" if forgotten else "there was no previous key")
                return
            aes_key = secrets_read(("aes_key",), from_stdin=stdin)["aes_key"]
            platform_rotate_key(platform=platform, aes_key=aes_key, actor=actor)
        except PlatformError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{platform}: the new EncodingAESKey is current; pushes under the previous one are still read"
            )
        )
