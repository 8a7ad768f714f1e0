from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from authorizers.management.commands._platform_secrets import secrets_read
from authorizers.platforms import PlatformError, platform_add


class Command(BaseCommand):
    help = (
        "Serve one more WeChat third-party platform. Its appsecret, message token and EncodingAESKey are read "
        "from PLATFORM_APPSECRET, PLATFORM_TOKEN and PLATFORM_AES_KEY in the environment, or with --stdin from "
        "NAME=value lines on standard input; never from the command line. Prints the platform's URLs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="a name staff recognise it by (unique)")
        parser.add_argument("--component-appid", required=True, help="the platform's AppID (wx…)")
        parser.add_argument("--stdin", action="store_true", help="read the secrets as NAME=value lines from stdin")

    def handle(self, *args: Any, name: str, component_appid: str, stdin: bool, **options: Any) -> None:
        secrets = secrets_read(("appsecret", "token", "aes_key"), from_stdin=stdin)
        try:
            platform = platform_add(
                name=name, component_appid=component_appid, actor=Actor.system("platform_add command"), **secrets
            )
        except PlatformError as exc:
            raise CommandError(exc.message) from None
        appid = platform.component_appid
        self.stdout.write(self.style.SUCCESS(f"platform {platform} added"))
        self.stdout.write(f"授权事件接收URL (events):  /wechat/platforms/{appid}/events/")
        self.stdout.write(f"authorization page:        /wechat/platforms/{appid}/authorize/")
        self.stdout.write(f"redirect_uri prefix:       /wechat/platforms/{appid}/authorize/callback/")
