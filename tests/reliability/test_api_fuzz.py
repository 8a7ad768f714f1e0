"""schemathesis against the project's own /api/schema/: generated requests to every operation, with
a merchant's API key and without one; no 500, every answer inside the schema (status, content type,
body). Over HTTP to pytest-django's live server, on the test database.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audit.services import Actor
from tests.reliability import figures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.reliability]

EXAMPLES = figures.size(100, 25)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def merchant_key(make_authorizer, component_ready, wechat) -> str:
    from django.utils import timezone

    from authorizers.api_keys import api_key_issue
    from kfaccounts.models import KfAccount
    from tests.conftest import WECHAT

    wechat.get(f"{WECHAT}/cgi-bin/customservice/getkflist", json={"kf_list": []})
    merchant = make_authorizer()
    KfAccount.objects.create(authorizer=merchant, kf_account="kf1@shop", last_seen_at=timezone.now())
    _, key = api_key_issue(authorizer=merchant, actor=Actor.system("schemathesis"))
    return key


def test_api_answers_inside_its_schema_with_and_without_a_key(live_server, merchant_key, wechat) -> None:
    # Over HTTP to pytest-django's live server (a real threaded server on the test database);
    # WeChat stays faked by `responses` (a sync reads getkflist).
    wechat.add_passthru(live_server.url)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    counts = {"operations": 0, "requests": 0, "5xx": 0, "schema violations": 0}
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid operation raises here, as it should
        counts["operations"] += 1

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case) -> None:
            for headers in ({"Authorization": f"Api-Key {merchant_key}"}, {"Authorization": ""}):
                response = case.call(headers=headers, timeout=30)
                counts["requests"] += 1
                if response.status_code >= 500:
                    counts["5xx"] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                except Exception as exc:
                    counts["schema violations"] += 1
                    failures.append(
                        f"{case.operation.label} ({'key' if headers['Authorization'] else 'anonymous'}): {exc}"
                    )
                    raise

        try:
            call()
        except Exception:
            pass  # recorded in failures, with the minimal example hypothesis found
    figures.record(
        "API fuzzing (schemathesis)",
        operations=counts["operations"],
        generated_requests=counts["requests"],
        **{"5xx": counts["5xx"]},
        schema_violations=counts["schema violations"],
    )
    assert counts["operations"] >= 6
    assert not failures, "\n\n".join(dict.fromkeys(failures))
