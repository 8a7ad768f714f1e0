from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from authorizers.api_keys import api_key_issue
from authorizers.platforms import UnknownAuthorization, authorization_find


class Command(BaseCommand):
    help = "Issue an API key for a merchant (authorizer appid). The key is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("appid")
        parser.add_argument("--name", default="", help="a label to recognise the key by")
        parser.add_argument(
            "--platform", help="the component appid, when the merchant authorized several platforms (a key is one's)"
        )

    def handle(self, *args: Any, appid: str, name: str, platform: str | None, **options: Any) -> None:
        try:
            authorizer = authorization_find(appid=appid, component_appid=platform)
        except UnknownAuthorization as exc:
            raise CommandError(exc.message) from None
        api_key, plaintext = api_key_issue(
            authorizer=authorizer, name=name, actor=Actor.system("issue_api_key command")
        )
        self.stderr.write(f"API key {api_key.prefix}… for {authorizer}; it is shown only now:")
        self.stdout.write(plaintext)
