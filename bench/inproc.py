"""Run inside the bench's own ``manage.py shell`` (its database, its keys): set-up the bench needs.

Each function prints one JSON line on stdout for the bench process to read; nothing is logged.
"""

from __future__ import annotations

import json


def issue_keys(appids: list[str]) -> None:
    from audit.services import Actor
    from authorizers.api_keys import api_key_issue
    from authorizers.models import Authorizer

    keys = {}
    for authorizer in Authorizer.objects.filter(appid__in=appids):
        _, plaintext = api_key_issue(authorizer=authorizer, actor=Actor.system("bench"), name="bench")
        keys[authorizer.appid] = plaintext
    print(json.dumps(keys))


def access_tokens(authorizer_ids: list[int]) -> None:
    from authorizers.tokens import authorizer_token_get

    print(json.dumps({str(i): authorizer_token_get(authorizer_id=i) for i in authorizer_ids}))


def sdk_credentials(authorizer_id: int) -> None:
    """What a naive SDK loop holds: the component token and the merchant's refresh token."""
    from django.conf import settings

    from authorizers.models import Authorizer
    from authorizers.tokens import component_token_get, refresh_token_of

    authorizer = Authorizer.objects.get(pk=authorizer_id)
    print(
        json.dumps(
            {
                "component_appid": settings.WECHAT_COMPONENT_APPID,
                "component_access_token": component_token_get(),
                "authorizer_appid": authorizer.appid,
                "authorizer_refresh_token": refresh_token_of(authorizer),
            }
        )
    )
