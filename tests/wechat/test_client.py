import json
import logging
import socket
import threading
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from wechat.client import KfAccountInfo, WeChatClient
from wechat.errors import (
    AuthorizationRevoked,
    ComponentInvalid,
    ComponentTicketInvalid,
    InvalidKfAccount,
    KfNotEnabled,
    MalformedResponse,
    MerchantIpNotWhitelisted,
    MinuteQuotaExceeded,
    Permanent,
    PermissionNotGranted,
    QuotaExceeded,
    RefreshTokenInvalid,
    TokenInvalid,
    Transient,
    WeChatError,
)

BASE = "https://api.example.test"
APPID = "wx_component_appid"
SECRET = "component-appsecret-0123456789abcdef"
COMPONENT_TOKEN = "COMPONENT_TOKEN_61W3mEpU66027wgNZ_MhGHNQDHnFATkDa9"
ACCESS_TOKEN = "AUTHORIZER_TOKEN_QXjUqNqfYVH0yBE1iIFes0qM+/="
REFRESH_TOKEN = "REFRESH_dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY"
TICKET = "ticket@@@verify-ticket-value"

DEL_URL = f"{BASE}/customservice/kfaccount/del"


@pytest.fixture
def wechat_client() -> WeChatClient:
    return WeChatClient(api_base=BASE + "/", component_appid=APPID, component_appsecret=SECRET)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def only_call(mocked) -> requests.PreparedRequest:
    assert len(mocked.calls) == 1
    return mocked.calls[0].request


def url_of(request: requests.PreparedRequest) -> str:
    assert isinstance(request.url, str)
    return request.url


def query_of(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url_of(request)).query, keep_blank_values=True)


def path_of(request: requests.PreparedRequest) -> str:
    return urlsplit(url_of(request)).path


def json_body(request: requests.PreparedRequest) -> dict:
    assert request.headers["Content-Type"].startswith("application/json")
    assert isinstance(request.body, bytes)
    return json.loads(request.body.decode("utf-8"))


# --- component endpoints: method, URL, query, body ----------------------------------------------


def test_component_token_posts_credentials_and_ticket_without_a_query_token(wechat_client, mocked):
    mocked.post(
        f"{BASE}/cgi-bin/component/api_component_token", json={"component_access_token": "T", "expires_in": 7200}
    )
    assert wechat_client.component_token(verify_ticket=TICKET) == {"component_access_token": "T", "expires_in": 7200}
    request = only_call(mocked)
    assert request.method == "POST"
    assert urlsplit(request.url).query == ""
    assert json_body(request) == {
        "component_appid": APPID,
        "component_appsecret": SECRET,
        "component_verify_ticket": TICKET,
    }


@pytest.mark.parametrize(
    ("method_name", "kwargs", "path", "body"),
    [
        ("create_preauthcode", {}, "/cgi-bin/component/api_create_preauthcode", {"component_appid": APPID}),
        (
            "query_auth",
            {"authorization_code": "auth-code"},
            "/cgi-bin/component/api_query_auth",
            {"component_appid": APPID, "authorization_code": "auth-code"},
        ),
        (
            "authorizer_token",
            {"authorizer_appid": "wxauth", "refresh_token": REFRESH_TOKEN},
            "/cgi-bin/component/api_authorizer_token",
            {"component_appid": APPID, "authorizer_appid": "wxauth", "authorizer_refresh_token": REFRESH_TOKEN},
        ),
        (
            "get_authorizer_info",
            {"authorizer_appid": "wxauth"},
            "/cgi-bin/component/api_get_authorizer_info",
            {"component_appid": APPID, "authorizer_appid": "wxauth"},
        ),
        (
            "get_authorizer_list",
            {"offset": 500, "count": 100},
            "/cgi-bin/component/api_get_authorizer_list",
            {"component_appid": APPID, "offset": 500, "count": 100},
        ),
    ],
)
def test_component_calls_post_json_with_the_component_token_in_the_query(
    wechat_client, mocked, method_name, kwargs, path, body
):
    answer = {
        "pre_auth_code": "preauthcode@@@x",
        "expires_in": 600,
        "authorizer_access_token": "A",
        "authorization_info": {},
        "list": [],
    }
    mocked.post(f"{BASE}{path}", json=answer)
    assert getattr(wechat_client, method_name)(component_token=COMPONENT_TOKEN, **kwargs) == answer
    request = only_call(mocked)
    assert request.method == "POST"
    assert path_of(request) == path
    assert query_of(request) == {"component_access_token": [COMPONENT_TOKEN]}
    assert json_body(request) == body


def test_get_authorizer_list_defaults_to_the_largest_page(wechat_client, mocked):
    mocked.post(f"{BASE}/cgi-bin/component/api_get_authorizer_list", json={"total_count": 0, "list": []})
    wechat_client.get_authorizer_list(component_token=COMPONENT_TOKEN)
    assert json_body(only_call(mocked)) == {"component_appid": APPID, "offset": 0, "count": 500}


@pytest.mark.parametrize("kwargs", [{"count": 501}, {"count": 0}, {"offset": -1}])
def test_get_authorizer_list_refuses_pages_wechat_would_reject(wechat_client, mocked, kwargs):
    with pytest.raises(ValueError):
        wechat_client.get_authorizer_list(component_token=COMPONENT_TOKEN, **kwargs)
    assert not mocked.calls


def test_start_push_ticket_sends_component_secret_with_no_token(wechat_client, mocked):
    mocked.post(f"{BASE}/cgi-bin/component/api_start_push_ticket", json={"errcode": 0, "errmsg": "ok"})
    assert wechat_client.start_push_ticket() == {"errcode": 0, "errmsg": "ok"}
    request = only_call(mocked)
    assert urlsplit(request.url).query == ""
    assert json_body(request) == {"component_appid": APPID, "component_secret": SECRET}


# --- kf endpoints ------------------------------------------------------------------------------


def test_kf_delete_posts_exactly_the_documented_json_body(wechat_client, mocked):
    mocked.post(DEL_URL, json={"errcode": 0, "errmsg": "ok"})
    assert wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test") == {"errcode": 0, "errmsg": "ok"}
    request = only_call(mocked)
    assert request.method == "POST"
    assert path_of(request) == "/customservice/kfaccount/del"
    assert query_of(request) == {"access_token": [ACCESS_TOKEN]}
    assert request.body == b'{"kf_account":"test1@test"}'


def test_kf_list_gets_and_parses_leniently(wechat_client, mocked):
    mocked.get(
        f"{BASE}/cgi-bin/customservice/getkflist",
        json={
            "kf_list": [
                {
                    "kf_account": "test1@test",
                    "kf_headimgurl": "http://mmbiz.qpic.cn/x/0",
                    "kf_id": "1001",
                    "kf_nick": "ntest1",
                    "kf_wx": "kfwx1",
                },
                {
                    "kf_account": "test3@test",
                    "kf_id": 1003,
                    "kf_nick": "ntest3",
                    "invite_wx": "kfwx3",
                    "invite_expire_time": "123456789",
                    "invite_status": "waiting",
                    "status": 1,
                    "kf_headimg": "",
                },
                {"kf_account": "test4@test", "invite_expire_time": 123456790, "kf_id": None},
                {"kf_nick": "no account, skipped"},
                "not an object",
            ]
        },
    )
    accounts = wechat_client.kf_list(access_token=ACCESS_TOKEN)
    request = only_call(mocked)
    assert request.method == "GET"
    assert query_of(request) == {"access_token": [ACCESS_TOKEN]}
    assert accounts == [
        KfAccountInfo("test1@test", "ntest1", "1001", "http://mmbiz.qpic.cn/x/0", "kfwx1", "", None, ""),
        KfAccountInfo("test3@test", "ntest3", "1003", "", "", "kfwx3", 123456789, "waiting"),
        KfAccountInfo("test4@test", invite_expire_time=123456790),
    ]


def test_kf_list_of_nothing_is_an_empty_list(wechat_client, mocked):
    mocked.get(f"{BASE}/cgi-bin/customservice/getkflist", json={"kf_list": []})
    assert wechat_client.kf_list(access_token=ACCESS_TOKEN) == []


@pytest.mark.parametrize("answer", [{}, {"errcode": 0, "errmsg": "ok"}, {"kf_list": None}, {"kf_list": {"a": 1}}])
def test_kf_list_answer_without_a_list_is_malformed_not_empty(wechat_client, mocked, answer):
    mocked.get(f"{BASE}/cgi-bin/customservice/getkflist", json=answer)
    with pytest.raises(MalformedResponse):
        wechat_client.kf_list(access_token=ACCESS_TOKEN)


def test_empty_token_is_refused_before_any_call(wechat_client, mocked):
    with pytest.raises(ValueError):
        wechat_client.kf_delete(access_token="", kf_account="a@b")
    assert not mocked.calls


# --- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "cls"),
    [
        (40001, TokenInvalid),
        (42001, TokenInvalid),
        (-1, Transient),
        (45011, MinuteQuotaExceeded),
        (45009, QuotaExceeded),
        (48001, PermissionNotGranted),
        (61007, PermissionNotGranted),
        (61003, AuthorizationRevoked),
        (61023, RefreshTokenInvalid),
        (40164, MerchantIpNotWhitelisted),
        (65400, KfNotEnabled),
        (65401, InvalidKfAccount),
        (61005, ComponentTicketInvalid),
        (40013, Permanent),
    ],
)
def test_errcodes_become_their_exception_group(wechat_client, mocked, errcode, cls):
    mocked.post(DEL_URL, json={"errcode": errcode, "errmsg": "some message rid: 6643a1f2-1a2b3c4d-5e6f7a8b"})
    with pytest.raises(cls) as exc:
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
    assert exc.value.errcode == errcode
    assert exc.value.rid == "6643a1f2-1a2b3c4d-5e6f7a8b"
    assert exc.value.path == "/customservice/kfaccount/del"


def test_errcode_sent_as_a_string_is_still_understood(wechat_client, mocked):
    mocked.post(DEL_URL, json={"errcode": "65401", "errmsg": "invalid custom service account"})
    with pytest.raises(InvalidKfAccount):
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="x@y")


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'{"errcode": 0, "errm',
        b"",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"ok"',
        b'{"errcode": "busy", "errmsg": "x"}',
        b'{"errcode": null}',
    ],
    ids=["html", "truncated", "empty", "binary", "array", "string", "errcode-text", "errcode-null"],
)
def test_unreadable_bodies_are_transient_with_unknown_outcome(wechat_client, mocked, body):
    mocked.post(DEL_URL, body=body, status=200, content_type="text/html")
    with pytest.raises(MalformedResponse) as exc:
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
    assert isinstance(exc.value, Transient)
    assert exc.value.errcode is None
    assert exc.value.outcome_unknown is True


@pytest.mark.parametrize(
    ("status", "cls", "outcome_unknown"),
    [
        (500, Transient, True),
        (502, Transient, True),
        (503, Transient, True),
        (504, Transient, True),
        (429, Transient, False),
        (408, Transient, False),
        (400, Permanent, False),
        (403, Permanent, False),
        (404, Permanent, False),
    ],
)
def test_http_status_errors_map_by_status(wechat_client, mocked, status, cls, outcome_unknown):
    mocked.post(DEL_URL, json={"errcode": 0, "errmsg": "ok"}, status=status)
    with pytest.raises(cls) as exc:
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
    assert exc.value.http_status == status
    assert exc.value.errcode is None
    assert exc.value.outcome_unknown is outcome_unknown


def test_redirects_are_not_followed(wechat_client, mocked):
    mocked.post(DEL_URL, status=302, headers={"Location": "https://elsewhere.example.test/del"})
    mocked.post("https://elsewhere.example.test/del", json={"errcode": 0})
    with pytest.raises(Permanent) as exc:
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
    assert exc.value.http_status == 302
    assert len(mocked.calls) == 1


def test_token_answers_missing_their_token_are_malformed(wechat_client, mocked):
    mocked.post(f"{BASE}/cgi-bin/component/api_component_token", json={"expires_in": 7200})
    mocked.post(f"{BASE}/cgi-bin/component/api_authorizer_token", json={"authorizer_access_token": ""})
    with pytest.raises(MalformedResponse):
        wechat_client.component_token(verify_ticket=TICKET)
    with pytest.raises(MalformedResponse):
        wechat_client.authorizer_token(
            component_token=COMPONENT_TOKEN, authorizer_appid="wx1", refresh_token=REFRESH_TOKEN
        )


# --- transport failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "outcome_unknown"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), False),
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (requests.exceptions.ConnectionError("refused"), False),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(None, "/x", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
            ),
            False,
        ),
        (requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())), True),
        (requests.exceptions.ChunkedEncodingError("body cut"), True),
    ],
    ids=["connect-timeout", "read-timeout", "connection-error", "refused", "aborted", "chunked"],
)
def test_transport_failures_are_transient_and_say_whether_wechat_may_have_acted(
    wechat_client, mocked, raised, outcome_unknown
):
    mocked.post(DEL_URL, body=raised)
    with pytest.raises(Transient) as exc:
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
    assert exc.value.errcode is None
    assert exc.value.outcome_unknown is outcome_unknown


def test_transport_errors_do_not_chain_the_requests_exception(wechat_client, mocked):
    mocked.post(DEL_URL, body=requests.exceptions.ConnectionError(f"{DEL_URL}?access_token={ACCESS_TOKEN}"))
    with pytest.raises(Transient) as exc:
        wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
    assert exc.value.__cause__ is None
    assert exc.value.__context__ is None


# --- secrets stay out of messages and logs -----------------------------------------------------


def test_token_never_appears_in_errors_or_logs(wechat_client, mocked, caplog):
    url_with_token = f"{DEL_URL}?access_token={ACCESS_TOKEN}"
    quoted = quote(ACCESS_TOKEN, safe="")
    failures = [
        requests.exceptions.ConnectionError(f"Max retries exceeded with url: {url_with_token}"),
        requests.exceptions.ReadTimeout(f"Read timed out for {DEL_URL}?access_token={quoted}&x=1"),
        requests.exceptions.ConnectionError(f"token {ACCESS_TOKEN} leaked without a query string"),
    ]
    for failure in failures:
        mocked.post(DEL_URL, body=failure)
    mocked.post(DEL_URL, json={"errcode": 40001, "errmsg": f"invalid credential {ACCESS_TOKEN} rid: 1-2"})
    mocked.post(DEL_URL, status=500, body=f"error for {url_with_token}")
    mocked.post(DEL_URL, status=200, body=f"<html>{ACCESS_TOKEN}</html>")

    caplog.set_level(logging.DEBUG)
    raised = []
    for _ in range(6):
        with pytest.raises(WeChatError) as exc:
            wechat_client.kf_delete(access_token=ACCESS_TOKEN, kf_account="test1@test")
        raised.append(exc.value)

    for err in raised:
        for text in (str(err), repr(err), repr(err.args)):
            assert ACCESS_TOKEN not in text
            assert quoted not in text
    assert ACCESS_TOKEN not in caplog.text
    assert quoted not in caplog.text
    assert "/customservice/kfaccount/del" in caplog.text
    assert "errcode=40001" in caplog.text


def test_appsecret_and_refresh_token_never_appear_in_errors(wechat_client, mocked):
    mocked.post(
        f"{BASE}/cgi-bin/component/api_authorizer_token",
        body=requests.exceptions.ConnectionError(f"body was {REFRESH_TOKEN} and {SECRET}"),
    )
    mocked.post(
        f"{BASE}/cgi-bin/component/api_component_token",
        json={"errcode": 40125, "errmsg": f"invalid appsecret {SECRET}"},
    )
    with pytest.raises(Transient) as transient:
        wechat_client.authorizer_token(
            component_token=COMPONENT_TOKEN, authorizer_appid="wx1", refresh_token=REFRESH_TOKEN
        )
    assert REFRESH_TOKEN not in str(transient.value) and SECRET not in str(transient.value)
    with pytest.raises(ComponentInvalid) as invalid:  # 40125: a platform hold (docs/wechat.md §11)
        wechat_client.component_token(verify_ticket=TICKET)
    assert SECRET not in str(invalid.value)
    assert "invalid appsecret ***" in str(invalid.value)


def test_client_repr_shows_no_secret(wechat_client):
    assert SECRET not in repr(wechat_client)


# --- session, pool, timeout --------------------------------------------------------------------


def test_default_session_is_pooled_and_calls_carry_a_connect_and_read_timeout(mocked):
    client = WeChatClient(api_base=BASE, component_appid=APPID, component_appsecret=SECRET, pool_maxsize=17)
    adapter = client._session.get_adapter(BASE)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter._pool_maxsize == 17  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0
    mocked.post(DEL_URL, json={"errcode": 0})
    client.kf_delete(access_token=ACCESS_TOKEN, kf_account="a@b")
    assert only_call(mocked).req_kwargs["timeout"] == (3.05, 10.0)  # type: ignore[attr-defined]


def test_a_given_session_is_used(mocked):
    session = requests.Session()
    client = WeChatClient(api_base=BASE, component_appid=APPID, component_appsecret=SECRET, session=session)
    assert client._session is session


@pytest.mark.parametrize("kwargs", [{"api_base": "api.weixin.qq.com"}, {"timeout": (0, 1)}, {"timeout": (1,)}])
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        WeChatClient(**{"api_base": BASE, "component_appid": APPID, "component_appsecret": SECRET, **kwargs})


# --- real sockets on loopback: the shapes requests and urllib3 really raise ---------------------


def _serve_once(handler) -> tuple[str, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def run():
        conn, _ = server.accept()
        try:
            handler(conn)
        finally:
            conn.close()
            server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", thread


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b'"}' not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_refused_connection_means_wechat_never_saw_the_call():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    client = WeChatClient(api_base=f"http://127.0.0.1:{port}", component_appid=APPID, component_appsecret=SECRET)
    with pytest.raises(Transient) as exc:
        client.kf_delete(access_token=ACCESS_TOKEN, kf_account="a@b")
    assert exc.value.outcome_unknown is False
    assert ACCESS_TOKEN not in str(exc.value)


def test_connection_dropped_after_the_request_left_leaves_the_outcome_unknown():
    base, thread = _serve_once(_read_request)  # reads the whole request, then hangs up without answering
    client = WeChatClient(api_base=base, component_appid=APPID, component_appsecret=SECRET)
    with pytest.raises(Transient) as exc:
        client.kf_delete(access_token=ACCESS_TOKEN, kf_account="a@b")
    thread.join(5)
    assert exc.value.outcome_unknown is True
    assert ACCESS_TOKEN not in str(exc.value)


def test_read_timeout_leaves_the_outcome_unknown():
    done = threading.Event()

    def stall(conn):
        _read_request(conn)
        done.wait(5)

    base, thread = _serve_once(stall)
    client = WeChatClient(api_base=base, component_appid=APPID, component_appsecret=SECRET, timeout=(1.0, 0.2))
    try:
        with pytest.raises(Transient) as exc:
            client.kf_delete(access_token=ACCESS_TOKEN, kf_account="a@b")
    finally:
        done.set()
        thread.join(5)
    assert exc.value.outcome_unknown is True
    assert ACCESS_TOKEN not in str(exc.value)


def test_request_on_the_wire_is_a_post_with_the_json_body():
    seen: list[bytes] = []

    def answer(conn):
        seen.append(_read_request(conn))
        body = b'{"errcode":0,"errmsg":"ok"}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    base, thread = _serve_once(answer)
    client = WeChatClient(api_base=base, component_appid=APPID, component_appsecret=SECRET)
    assert client.kf_delete(access_token="tok", kf_account="test1@test") == {"errcode": 0, "errmsg": "ok"}
    thread.join(5)
    head, _, body = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /customservice/kfaccount/del?access_token=tok HTTP/1.1")
    assert body == b'{"kf_account":"test1@test"}'


# --- openapi/quota/get ---------------------------------------------------------------------------


def test_api_quota_posts_the_cgi_path_with_the_merchants_token(wechat_client, mocked):
    mocked.post(
        f"{BASE}/cgi-bin/openapi/quota/get",
        json={
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": 1000, "used": 3, "remain": 997},
            "rate_limit": {"call_count": 100, "refresh_second": 60},
            "component_rate_limit": {"call_count": 30, "refresh_second": 60},
        },
    )
    quota = wechat_client.api_quota(access_token=ACCESS_TOKEN, cgi_path="/customservice/kfaccount/del")
    call = mocked.calls[0].request
    assert parse_qs(urlsplit(call.url).query) == {"access_token": [ACCESS_TOKEN]}
    assert json.loads(call.body) == {"cgi_path": "/customservice/kfaccount/del"}
    assert (quota.daily_limit, quota.remain, quota.pace()) == (1000, 997, 0.5)


def test_api_quota_refusal_is_a_wechat_error(wechat_client, mocked):
    mocked.post(f"{BASE}/cgi-bin/openapi/quota/get", json={"errcode": 76022, "errmsg": "sns path not supported"})
    with pytest.raises(Permanent):
        wechat_client.api_quota(access_token=ACCESS_TOKEN, cgi_path="/sns/oauth2")
