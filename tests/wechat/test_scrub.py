"""The one scrubber: query strings dropped, secret parameters and known secrets masked."""

from __future__ import annotations

import pytest

from wechat.scrub import mask_secrets, scrub, strip_query

TOKEN = "AT_" + "x" * 40


@pytest.mark.parametrize(
    "text",
    [
        f"GET /cgi-bin/component/api_query_auth?component_access_token={TOKEN} HTTP/1.1",
        f"HTTPSConnectionPool(host='api.weixin.qq.com', port=443): Max retries exceeded with url: "
        f"/customservice/kfaccount/del?access_token={TOKEN} (Caused by ReadTimeoutError())",
        f"url: '/cgi-bin/x?access_token={TOKEN}'",
        f'"GET /wechat/authorize/callback/?auth_code={TOKEN}&state=s HTTP/1.1" 200',
        f"/x?a=(1)&access_token={TOKEN}",
    ],
)
def test_strip_query_leaves_no_token(text):
    assert TOKEN not in strip_query(text)
    assert TOKEN not in scrub(text)


def test_mask_secrets_keeps_the_text_readable():
    line = f"calling /cgi-bin/x?authorizer_access_token={TOKEN}&kf_account=kf1@shop now"
    assert mask_secrets(line) == "calling /cgi-bin/x?authorizer_access_token=***&kf_account=kf1@shop now"
    for name in ("component_verify_ticket", "pre_auth_code", "refresh_token", "auth_code", "access_token"):
        assert TOKEN not in mask_secrets(f"{name}={TOKEN}")


def test_known_secrets_are_masked_verbatim_and_url_encoded_but_short_values_are_left():
    secret = "s3cr/et+value=="
    text = f"echo {secret} and {'s3cr%2Fet%2Bvalue%3D%3D'} and short abc"
    assert mask_secrets(text, [secret, "abc"]) == "echo *** and *** and short abc"
