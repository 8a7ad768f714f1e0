"""A 61004 on one platform holds that platform's deletions only (issue 19)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from audit.services import Actor
from authorizers import alerts
from authorizers.models import PlatformAlert
from kfaccounts.models import DeletionRequest
from tests.conftest import PLATFORM_B
from tests.kfaccounts.conftest import DEL_URL, del_calls

pytestmark = pytest.mark.django_db

B = PLATFORM_B["component_appid"]
NOT_WHITELISTED = {"errcode": 61004, "errmsg": "access clientip is not registered"}


@pytest.fixture
def merchant_b(make_authorizer, platform_b):
    return make_authorizer(platform=platform_b)


def _answer_61004_to(token: str):
    """kfaccount/del: 61004 for calls with ``token`` (the platform whose whitelist lacks us), ok otherwise."""

    def answer(request):
        used = parse_qs(urlsplit(request.url).query)["access_token"][0]
        body = NOT_WHITELISTED if used == token else {"errcode": 0, "errmsg": "ok"}
        return 200, {}, json.dumps(body)

    return answer


def test_61004_on_platform_b_holds_b_and_leaves_the_default_platform_working(
    wechat, merchant, merchant_b, api_client_for, request_deletion, django_capture_on_commit_callbacks
):
    wechat.add_callback("POST", DEL_URL, callback=_answer_61004_to(f"ACCESS_{merchant_b.appid}"))
    client_a, client_b = api_client_for(merchant), api_client_for(merchant_b)

    held = DeletionRequest.objects.get(pk=request_deletion(client_b, "kf1@b")["id"])
    assert (held.status, held.reason) == ("pending", "platform_held")
    (alert,) = alerts.alerts_active()
    assert (alert.code, alert.component_appid) == ("ip_not_whitelisted", B)
    assert alerts.platform_blocked(B) and not alerts.platform_blocked()

    done = DeletionRequest.objects.get(pk=request_deletion(client_a, "kf1@a")["id"])
    assert done.status == "succeeded"
    assert len(del_calls(wechat)) == 2  # B's one attempt, A's deletion

    # A second held deletion of B is not sent while B is blocked.
    again = DeletionRequest.objects.get(pk=request_deletion(client_b, "kf2@b")["id"])
    assert (again.reason, again.attempts) == ("platform_held", 0) and len(del_calls(wechat)) == 2

    # Clearing A's (non-existent) alert resumes nothing; clearing B's sends B's held deletions.
    assert not alerts.alert_clear(code=PlatformAlert.Code.IP_NOT_WHITELISTED, actor=Actor.system("test"))
    wechat.replace("POST", DEL_URL, json={"errcode": 0, "errmsg": "ok"})
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.alert_clear(
            code=PlatformAlert.Code.IP_NOT_WHITELISTED, actor=Actor.system("test"), component_appid=B
        )
    assert set(DeletionRequest.objects.filter(authorizer=merchant_b).values_list("status", flat=True)) == {"succeeded"}


def test_held_deletions_of_one_platform_resume_only_when_its_own_alert_clears(
    wechat, merchant, merchant_b, api_client_for, request_deletion, django_capture_on_commit_callbacks
):
    wechat.add_callback("POST", DEL_URL, callback=_answer_61004_to(f"ACCESS_{merchant.appid}"))
    held_a = DeletionRequest.objects.get(pk=request_deletion(api_client_for(merchant), "kf1@a")["id"])
    assert held_a.reason == "platform_held"
    assert alerts.platform_blocked(settings.WECHAT_COMPONENT_APPID) and not alerts.platform_blocked(B)
    # B opens and clears an alert of its own: A's held deletion stays held.
    alerts.alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED, component_appid=B)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_clear(code=PlatformAlert.Code.IP_NOT_WHITELISTED, actor=Actor.system("test"), component_appid=B)
    held_a.refresh_from_db()
    assert (held_a.status, held_a.reason) == ("pending", "platform_held")
