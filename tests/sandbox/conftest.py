"""An in-process sandbox on an ephemeral loopback port, with a clock the tests move by hand."""

from __future__ import annotations

import hashlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.app import Sandbox, SandboxConfig
from sandbox.seed import DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_TOKEN

START = 1_700_000_000.0  # 2023-11-15 06:13:20 Beijing time


class FakeClock:
    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Client:
    """Speaks to the sandbox over HTTP, like the platform and the e2e tests do."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.url = sandbox.url
        self.config = sandbox.config
        self.http = requests.Session()
        self.http.trust_env = False

    # raw HTTP
    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
        return self.http.get(self.url + path, params=params, headers=headers, timeout=10, allow_redirects=False)

    def post(self, path: str, json: Any = None, *, data: Any = None, **params: Any) -> requests.Response:
        return self.http.post(self.url + path, params=params, json=json, data=data, timeout=10, allow_redirects=False)

    # the control API
    def control(self, method: str, endpoint: str, json: Any = None, **params: Any) -> Any:
        response = self.http.request(method, self.url + "/sandbox" + endpoint, json=json, params=params, timeout=10)
        assert response.status_code < 300, response.text
        return response.json()

    # WeChat flows
    def ticket(self) -> str:
        return self.control("POST", "/push_ticket")["ticket"]

    def component_token(self) -> str:
        body = self.post(
            "/cgi-bin/component/api_component_token",
            {
                "component_appid": self.config.component_appid,
                "component_appsecret": self.config.component_appsecret,
                "component_verify_ticket": self.ticket(),
            },
        ).json()
        return body["component_access_token"]

    def component(self, api: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        payload = {"component_appid": self.config.component_appid, **body}
        return self.post(f"/cgi-bin/component/{api}", payload, component_access_token=token).json()

    def pre_auth_code(self, token: str) -> str:
        return self.component("api_create_preauthcode", {}, token)["pre_auth_code"]

    def authorize(self, appid: str, func: list[int] | None = None) -> dict[str, Any]:
        """Authorizes through the real flow and exchanges the code; answers authorization_info."""
        token = self.component_token()
        code = self.pre_auth_code(token)
        auth = self.control("POST", "/authorize", {"appid": appid, "func": func or [1, 6], "pre_auth_code": code})
        return self.component("api_query_auth", {"authorization_code": auth["auth_code"]}, token)["authorization_info"]

    def authorizer_token(self, appid: str, func: list[int] | None = None) -> str:
        return self.authorize(appid, func)["authorizer_access_token"]

    def kf_del(self, token: str, kf_account: str) -> dict[str, Any]:
        return self.post("/customservice/kfaccount/del", {"kf_account": kf_account}, access_token=token).json()

    def kf_add(self, token: str, kf_account: str, nickname: str = "客服") -> dict[str, Any]:
        return self.post(
            "/customservice/kfaccount/add", {"kf_account": kf_account, "nickname": nickname}, access_token=token
        ).json()

    def kf_list(self, token: str) -> dict[str, Any]:
        return self.get("/cgi-bin/customservice/getkflist", access_token=token).json()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def start_sandbox(clock: FakeClock, **overrides: Any) -> Sandbox:
    config = SandboxConfig(port=0, quiet=True, push_retry_delay=0.05, push_timeout=2.0, **overrides)
    sandbox = Sandbox(config, clock=clock)
    sandbox.start_in_thread()
    return sandbox


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    sandbox = start_sandbox(clock)
    yield sandbox
    sandbox.shutdown()


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[Client]:
    client = Client(sandbox)
    yield client
    client.http.close()


# ---------------------------------------------------------------- a platform stand-in that receives pushes


@dataclass
class Push:
    params: dict[str, str]
    body: bytes
    content_type: str
    fields: dict[str, str] = field(default_factory=dict)


class PushReceiver:
    """A loopback HTTP endpoint that checks and decrypts pushes the way the platform must."""

    def __init__(
        self,
        *,
        token: str = DEMO_COMPONENT_TOKEN,
        aes_key: str = DEMO_COMPONENT_AES_KEY,
        appid: str = DEMO_COMPONENT_APPID,
    ) -> None:
        from wechat.crypto import WXBizMsgCrypt

        self.crypt = WXBizMsgCrypt(token=token, encoding_aes_key=aes_key, appid=appid)
        self.token = token
        self.appid = appid
        self.pushes: list[Push] = []
        self.problems: list[str] = []
        self.answers: list[str] = []  # answers to give, in order; then "success"
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                answer = receiver.receive(params, body, self.headers.get("Content-Type", ""))
                payload = answer.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wechat/component/events/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def receive(self, params: dict[str, str], body: bytes, content_type: str) -> str:
        push = Push(params, body, content_type)
        try:
            envelope = ET.fromstring(body)
            if envelope.findtext("AppId") != self.appid:
                self.problems.append("envelope AppId is not the component appid")
            encrypt = envelope.findtext("Encrypt") or ""
            expected = hashlib.sha1("".join(sorted([self.token, params["timestamp"], params["nonce"]])).encode())
            if params.get("signature") != expected.hexdigest():
                self.problems.append("signature does not match")
            if params.get("encrypt_type") != "aes":
                self.problems.append("encrypt_type is not aes")
            plaintext = self.crypt.decrypt_message(
                encrypt=encrypt,
                msg_signature=params["msg_signature"],
                timestamp=params["timestamp"],
                nonce=params["nonce"],
            )
            push.fields = {child.tag: child.text or "" for child in ET.fromstring(plaintext)}
        except Exception as exc:
            self.problems.append(f"{type(exc).__name__}: {exc}")
        with self.arrived:
            self.pushes.append(push)
            self.arrived.notify_all()
            return self.answers.pop(0) if self.answers else "success"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Push]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.pushes) >= count, timeout), (
                f"expected {count} pushes, got {len(self.pushes)}"
            )
            return list(self.pushes)

    def of_type(self, info_type: str) -> list[Push]:
        with self.arrived:
            return [p for p in self.pushes if p.fields.get("InfoType") == info_type]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    receiver = PushReceiver()
    yield receiver
    receiver.close()
