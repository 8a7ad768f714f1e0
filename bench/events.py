"""How long the events URL takes to verify, decrypt, record and answer a ticket push."""

from __future__ import annotations

import time

from django.test import Client

from bench.timing import per_call, report


def run() -> None:
    from tests.pushes import encrypted_push, ticket_push

    client = Client()
    n = 200
    pushes = [encrypted_push(ticket_push(f"ticket@@@{i}", create_time=int(time.time()) + i)) for i in range(n * 6)]
    baseline = per_call(lambda i: client.get("/healthz"), n=n)
    offset = iter(range(len(pushes)))

    def push(_: int) -> None:
        query, body = pushes[next(offset)]
        response = client.generic("POST", f"/wechat/component/events/?{query}", body, content_type="text/xml")
        assert response.content == b"success", response.content

    measured = per_call(push, n=n)
    report("ticket push: verify+decrypt+store+answer", measured, baseline, "GET /healthz")
