"""Deliveries over https: connected to the checked address, the certificate verified for the URL's host."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from audit.services import Actor
from webhooks import services, signing
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[str, Path, list[tuple[dict[str, str], bytes]]]]:
    cert, key = _certificate(tmp_path, "receiver")
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/hooks", cert, got
    server.shutdown()
    server.server_close()


def test_an_https_receiver_with_a_trusted_certificate_gets_the_signed_event(
    tls_receiver, make_authorizer, settings, django_capture_on_commit_callbacks
):
    url, cert, got = tls_receiver
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # 127.0.0.1 stands in for a public address here
    settings.WEBHOOK_CA_BUNDLE = str(cert)
    endpoint, secret = services.webhook_endpoint_register(
        authorizer=make_authorizer(), url=url, actor=Actor.system("test")
    )
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_ping(endpoint=endpoint, actor=Actor.system("test"))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.SUCCEEDED, 204)
    ((headers, body),) = got
    assert headers["Host"] == url.split("/")[2]
    assert signing.signature_verify(secret, headers["Kfp-Timestamp"], headers["Kfp-Signature"], body)


def test_an_untrusted_certificate_fails_the_attempt_and_nothing_is_sent(
    tls_receiver, make_authorizer, settings, tmp_path, django_capture_on_commit_callbacks
):
    url, _, got = tls_receiver
    other, _ = _certificate(tmp_path, "someone-else")
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_CA_BUNDLE = str(other)
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600.0
    endpoint, _ = services.webhook_endpoint_register(authorizer=make_authorizer(), url=url, actor=Actor.system("t"))
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_ping(endpoint=endpoint, actor=Actor.system("test"))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING  # retried later
    assert "SSL" in delivery.last_error or "certificate" in delivery.last_error.lower()
    assert got == []
