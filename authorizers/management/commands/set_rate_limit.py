from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from authorizers.platforms import UnknownAuthorization, authorization_find
from authorizers.ratelimit import authorizer_rate_limit_set, rate_limit_for


class Command(BaseCommand):
    help = (
        "Hold a merchant's calls to each kf API at CALLS_PER_SECOND across every worker, or 'default' for "
        "the global WECHAT_RATE_LIMIT_PER_SECOND."
    )

    def add_arguments(self, parser):
        parser.add_argument("appid")
        parser.add_argument("calls_per_second", help="a positive number, or 'default'")
        parser.add_argument("--forget-learned", action="store_true", help="also drop the pace learned from 45009")
        parser.add_argument("--platform", help="the component appid, when the merchant authorized several platforms")

    def handle(self, *args, appid: str, calls_per_second: str, forget_learned: bool, platform: str | None, **options):
        try:
            authorizer = authorization_find(appid=appid, component_appid=platform)
        except UnknownAuthorization as exc:
            raise CommandError(exc.message) from None
        if calls_per_second == "default":
            rate = None
        else:
            try:
                rate = float(calls_per_second)
            except ValueError:
                raise CommandError(
                    f"calls_per_second must be a number or 'default', not {calls_per_second!r}"
                ) from None
        try:
            authorizer = authorizer_rate_limit_set(
                authorizer=authorizer,
                calls_per_second=rate,
                forget_learned=forget_learned,
                actor=Actor.system("set_rate_limit command"),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        effective = rate_limit_for(authorizer)
        self.stdout.write(f"{authorizer}: {'no limit' if effective is None else f'{effective:g} calls/s'}")
