"""The one place that sends HTTP to merchants' receivers.

It connects to an address `urlguard.resolve` has just checked (never re-resolving the name), keeps
TLS verification on the URL's host name (SNI and certificate check), follows no redirects, bounds
the time and the size of what it reads, and never raises: the outcome is a value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import certifi
import urllib3
from urllib3.exceptions import HTTPError

from webhooks.urlguard import Target

MAX_RESPONSE_BYTES = 4096
USER_AGENT = "kfplatform-webhooks/1"


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    target: Target,
    address: str,
    *,
    body: bytes,
    headers: dict[str, str],
    connect_timeout: float,
    read_timeout: float,
    ca_certs: str | None = None,
) -> Outcome:
    started = time.monotonic()
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)
    all_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
    }
    status: int | None = None
    error = ""
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            response.read(MAX_RESPONSE_BYTES)  # enough to let the receiver finish; the rest is dropped
            status = response.status
        finally:
            response.release_conn()
        if 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed"
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
    except HTTPError as exc:
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    except OSError as exc:
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        pool.close()
    return Outcome(status_code=status, error=error[:255], duration_ms=int((time.monotonic() - started) * 1000))
