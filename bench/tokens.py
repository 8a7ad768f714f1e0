"""The token fast path every WeChat call takes: read the row, decrypt, return."""

from __future__ import annotations

from bench.timing import per_call, report


def run() -> None:
    from authorizers.models import Authorizer
    from authorizers.tokens import authorizer_token_get, authorizer_tokens_store

    authorizer = Authorizer(appid="wxbench0000000001", func_ids=[1], verify_type_id=0, kind="service")
    authorizer_tokens_store(authorizer=authorizer, access_token="A" * 120, expires_in=7200, refresh_token="R" * 60)
    authorizer.save()
    baseline = per_call(lambda i: Authorizer.objects.get(pk=authorizer.pk), n=500)
    measured = per_call(lambda i: authorizer_token_get(authorizer_id=authorizer.pk), n=500)
    report("authorizer token (fresh): read + AES-GCM decrypt", measured, baseline, "plain row read")
