"""Inputs found by fuzzing the running service that answered 500: each is a 4xx with the envelope now."""

from __future__ import annotations

import base64
import time

import pytest

from tests.pushes import encrypted_push, ticket_push

pytestmark = pytest.mark.django_db


def _cursor(position: str) -> str:
    # DRF's cursor: base64 of a query string ("p" is the position of the last row seen).
    return base64.b64encode(f"p={position}".encode()).decode()


@pytest.fixture
def client(make_authorizer, api_client_for):
    return api_client_for(make_authorizer())


def _assert_envelope(response, status: int = 400) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


def test_json_nested_2000_deep_is_a_400_not_a_recursion_error(client):
    body = '{"kf_accounts": ' + "[" * 2000 + "]" * 2000 + "}"
    response = client.post("/api/v1/deletions/", body, content_type="application/json")
    _assert_envelope(response)
    assert response.json()["error"]["code"] == "malformed_request"


def test_a_kf_account_cursor_holding_a_nul_byte_is_a_400(client):
    assert _cursor("%00") == "cD0lMDA="  # the fuzzer's input, verbatim
    response = client.get("/api/v1/kf-accounts/?cursor=cD0lMDA%3D")
    _assert_envelope(response)
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_a_deletions_cursor_with_a_non_integer_position_is_a_400(client):
    assert _cursor("abc") == "cD1hYmM="
    response = client.get("/api/v1/deletions/?cursor=cD1hYmM%3D")
    _assert_envelope(response)
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_cursors_this_api_hands_out_still_work(client, make_authorizer):
    first = client.get("/api/v1/deletions/?page_size=1")
    assert first.status_code == 200
    assert client.get(f"/api/v1/deletions/?cursor={_cursor('12')}").status_code == 200
    assert client.get(f"/api/v1/kf-accounts/?cursor={_cursor('kf1@shop')}").status_code == 200


@pytest.mark.parametrize("timestamp", ["9" * 400, "-" + "9" * 400, "+" + "9" * 400, "1e999", " 1"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_an_absurd_push_timestamp_is_a_400_signed_or_not(client, settings, timestamp, signed):
    from django.test import Client

    query, body = encrypted_push(ticket_push(), timestamp=timestamp) if signed else ("", b"<xml/>")
    if not signed:
        query = f"timestamp={timestamp}&nonce=1&msg_signature=abc"
    response = Client().post(f"/wechat/component/events/?{query}", body, content_type="text/xml")
    assert response.status_code == 400
    assert response.content == b"timestamp must be a unix time"


def test_an_xml_parser_error_is_not_echoed_to_the_caller():
    from django.test import Client

    query = f"timestamp={int(time.time())}&nonce=1&msg_signature=abc"
    response = Client().post(f"/wechat/component/events/?{query}", b"<xml><a>&undefined;</a>", content_type="text/xml")
    assert response.status_code == 400
    assert response.content == b"malformed XML"


def test_the_generic_guard_turns_an_unanticipated_database_refusal_into_a_400(client, settings):
    from django.db import DataError

    from platform_app.api_errors import BadInputGuard, bad_input

    # The rule both paths share (DRF's exception handler and the middleware for other views).
    assert bad_input(DataError("invalid byte sequence")) and bad_input(RecursionError()) and bad_input(OverflowError())
    assert not bad_input(RuntimeError("a bug"))
    from django.test import RequestFactory

    guard = BadInputGuard(lambda request: None)  # type: ignore[arg-type,return-value]
    api = guard.process_exception(RequestFactory().get("/api/v1/x"), DataError("NUL"))
    assert api is not None and api.status_code == 400 and b'"malformed_request"' in api.content
    page = guard.process_exception(RequestFactory().get("/wechat/x"), OverflowError())
    assert page is not None and page.status_code == 400
    assert guard.process_exception(RequestFactory().get("/wechat/x"), RuntimeError()) is None


# --- item 11: pages that work offline, the envelope for every unknown /api/ URL -----------------


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_urls_answer_the_json_envelope_also_in_debug(settings, debug, method):
    from django.test import Client

    settings.DEBUG = debug
    for path in ("/api/v1/nope/", "/api/nothing", "/api/v2/deletions/"):
        response = getattr(Client(), method)(path)
        assert response.status_code == 404, path
        assert response.json() == {"error": {"code": "not_found", "message": "no such resource"}}


def test_api_docs_load_swagger_ui_from_this_server_not_a_cdn():
    import re

    from django.contrib.staticfiles import finders
    from django.test import Client

    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"""['"](https?://[^'"]+)['"]""", html)
    assert urls, html
    assert not [u for u in urls if u.startswith(("http://", "https://", "//"))], urls
    scripts = re.findall(r'src="([^"]+\.js)"', html)
    assert any("swagger-ui-bundle" in s for s in scripts), scripts
    for script in scripts:
        assert script.startswith("/static/")
        assert finders.find(script.removeprefix("/static/")), f"{script} is not shipped"
