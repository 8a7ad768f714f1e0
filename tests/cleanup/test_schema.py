"""The cleanup and webhook endpoints are in the OpenAPI document, which generates without a warning."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

CONTRACT = {
    "/api/v1/cleanup-rules/": {"get", "post"},
    "/api/v1/cleanup-rules/{id}/": {"get", "patch", "delete"},
    "/api/v1/cleanup-rules/{id}/dry-run/": {"post"},
    "/api/v1/cleanup-rules/{id}/runs/": {"get", "post"},
    "/api/v1/cleanup-rules/{id}/listed-accounts/": {"get", "post"},
    "/api/v1/cleanup-runs/": {"get"},
    "/api/v1/cleanup-runs/{id}/": {"get"},
    "/api/v1/webhooks/": {"get", "post"},
    "/api/v1/webhooks/{id}/": {"get", "patch", "delete"},
    "/api/v1/webhooks/{id}/rotate-secret/": {"post"},
    "/api/v1/webhooks/{id}/ping/": {"post"},
    "/api/v1/webhooks/{id}/deliveries/": {"get"},
}


def test_the_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(target))
    assert json.loads(target.read_text())["openapi"].startswith("3.")


def test_every_cleanup_and_webhook_endpoint_is_documented():
    schema = json.loads(APIClient().get("/api/schema/?format=json").content)
    validate_schema(schema)
    for path, methods in CONTRACT.items():
        assert methods <= set(schema["paths"][path]), path
    assert "secret" in schema["components"]["schemas"]["WebhookEndpointCreated"]["properties"]
    assert "secret" not in schema["components"]["schemas"]["WebhookEndpoint"]["properties"]
    assert "items" in schema["components"]["schemas"]["CleanupRunDetail"]["properties"]
