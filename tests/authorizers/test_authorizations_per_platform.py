"""One account, two platforms, two authorizations (issue 19): each with its own tokens, API keys and
deletions; revoking one leaves the other; reconciliation compares each platform with its own list."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from audit.services import Actor
from authorizers.alerts import alerts_active
from authorizers.models import ApiKey, Authorizer, AuthorizerStatus
from authorizers.reconciliation import authorizers_reconcile, platforms_reconcile
from authorizers.services import authorizer_authorize
from authorizers.tokens import authorizer_tokens_store
from kfaccounts.models import DeletionRequest
from tests.authorizers.test_events import _fake_authorization
from tests.authorizers.test_platform_urls import B_KEYS, B_URL, B, post, unauthorized
from tests.conftest import WECHAT
from tests.kfaccounts.conftest import DEL_URL, del_calls, request_deletion  # noqa: F401  (a fixture)
from tests.pushes import encrypted_push

pytestmark = pytest.mark.django_db

APPID = "wx1111111111111111"
AUTHORIZER_LIST = f"{WECHAT}/cgi-bin/component/api_get_authorizer_list"


@pytest.fixture
def both(make_authorizer, component_ready, platform_b):
    """The account APPID authorized the default platform and platform B; B's token is its own."""
    a = make_authorizer(appid=APPID, nickname="Shop via A")
    b = make_authorizer(appid=APPID, nickname="Shop via B", platform=platform_b)
    authorizer_tokens_store(authorizer=b, access_token="ACCESS_VIA_B", expires_in=7200, refresh_token="REFRESH_VIA_B")
    b.save()
    return a, b


def test_one_account_has_one_authorization_per_platform(both, platform_b):
    a, b = both
    assert a.pk != b.pk and a.platform != b.platform
    with pytest.raises(IntegrityError), transaction.atomic():
        Authorizer.objects.create(appid=APPID, platform=platform_b)


def test_authorizing_a_second_platform_makes_a_second_authorization(
    wechat, component_ready, platform_b, make_authorizer
):
    first = make_authorizer(appid=APPID)
    _fake_authorization(wechat, APPID, [1, 6])
    second = authorizer_authorize(authorization_code="code@@@B", actor=Actor.system("test"), platform=platform_b)
    assert second.pk != first.pk and second.platform == platform_b and second.status == AuthorizerStatus.ACTIVE
    assert Authorizer.objects.filter(appid=APPID).count() == 2
    first.refresh_from_db()
    assert first.access_token_ciphertext and first.status == AuthorizerStatus.ACTIVE  # untouched


def _token_used(call) -> str:
    return parse_qs(urlsplit(call.request.url).query)["access_token"][0]


def test_each_platforms_api_key_deletes_with_that_platforms_token(
    both,
    wechat,
    api_client_for,
    request_deletion,  # noqa: F811
):
    a, b = both
    wechat.post(DEL_URL, json={"errcode": 0, "errmsg": "ok"})
    via_a = request_deletion(api_client_for(a), "kf1@shop")
    via_b = request_deletion(api_client_for(b), "kf2@shop")
    assert DeletionRequest.objects.get(pk=via_a["id"]).authorizer == a
    assert DeletionRequest.objects.get(pk=via_b["id"]).authorizer == b
    tokens = {json.loads(c.request.body)["kf_account"]: _token_used(c) for c in del_calls(wechat)}
    assert tokens == {"kf1@shop": f"ACCESS_{APPID}", "kf2@shop": "ACCESS_VIA_B"}
    # Each key sees its own authorization's deletions only.
    listed = api_client_for(b).get("/api/v1/deletions/").json()
    assert [d["kf_account"] for d in listed["results"]] == ["kf2@shop"]


def test_unauthorized_on_one_platform_revokes_that_authorization_only(both, client, wechat, api_client_for):
    a, b = both
    key_a = api_client_for(a)
    response = post(client, B_URL, *encrypted_push(unauthorized(B, APPID), **B_KEYS))
    assert response.status_code == 200
    a.refresh_from_db()
    b.refresh_from_db()
    assert b.status == AuthorizerStatus.REVOKED and not b.access_token_ciphertext
    assert a.status == AuthorizerStatus.ACTIVE and a.access_token_ciphertext
    assert key_a.get("/api/v1/authorizer/").status_code == 200  # A's key keeps working
    # And the default platform's unauthorized revokes A only (B was already).
    post(client, "/wechat/component/events/", *encrypted_push(unauthorized(a.platform.component_appid, APPID)))
    a.refresh_from_db()
    assert a.status == AuthorizerStatus.REVOKED


def test_reconciliation_compares_each_platform_with_its_own_list(both, wechat):
    a, b = both

    def answer(request):
        listed = [{"authorizer_appid": APPID}] if json.loads(request.body)["component_appid"] != B else []
        return 200, {}, json.dumps({"total_count": len(listed), "list": listed})

    wechat.add_callback("POST", AUTHORIZER_LIST, callback=answer)
    results = platforms_reconcile(actor=Actor.schedule("test"))
    assert results[B].gone == [APPID] and results[a.platform.component_appid].gone == []
    (alert,) = alerts_active(authorizer_appid=APPID)
    assert (alert.code, alert.component_appid) == ("merchant_gone", B)
    calls = [c for c in wechat.calls if c.request.url.split("?")[0] == AUTHORIZER_LIST]
    assert {_component_token(c) for c in calls} == {"COMPONENT_TOKEN", "COMPONENT_TOKEN_B"}
    # The default platform's own run does not clear B's finding.
    authorizers_reconcile(actor=Actor.schedule("test"))
    assert len(alerts_active(authorizer_appid=APPID)) == 1


def _component_token(call) -> str:
    return parse_qs(urlsplit(call.request.url).query)["component_access_token"][0]


def test_commands_name_the_platform_when_an_account_authorized_several(both, monkeypatch):
    a, b = both
    with pytest.raises(CommandError, match="--platform"):
        call_command("issue_api_key", APPID, stdout=io.StringIO(), stderr=io.StringIO())
    call_command("issue_api_key", APPID, "--platform", B, stdout=io.StringIO(), stderr=io.StringIO())
    assert ApiKey.objects.get().authorizer == b
    call_command("set_rate_limit", APPID, "5", "--platform", b.platform.component_appid, stdout=io.StringIO())
    b.refresh_from_db()
    a.refresh_from_db()
    assert (a.rate_limit_per_second, b.rate_limit_per_second) == (None, 5.0)
    with pytest.raises(CommandError, match="no authorizer"):
        call_command("issue_api_key", APPID, "--platform", "wx0000000000000404", stdout=io.StringIO())


def test_a_single_platform_deployment_names_the_appid_alone(make_authorizer, component_ready):
    merchant = make_authorizer(appid=APPID)
    out = io.StringIO()
    call_command("issue_api_key", APPID, stdout=out, stderr=io.StringIO())
    assert ApiKey.objects.get().authorizer == merchant and out.getvalue().strip()
