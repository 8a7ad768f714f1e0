"""The OpenAPI document and its docs page, and odd HTTP usage that must stay a 4xx."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from kfaccounts.models import DeletionRequest

pytestmark = pytest.mark.django_db

CONTRACT = {
    "/api/v1/authorizer/": {"get"},
    "/api/v1/ping/": {"get"},
    "/api/v1/kf-accounts/": {"get"},
    "/api/v1/kf-accounts/sync/": {"post"},
    "/api/v1/kf-accounts/{kf_account}/": {"delete"},
    "/api/v1/deletions/": {"get", "post"},
    "/api/v1/deletions/{id}/": {"get"},
}


def test_schema_is_valid_openapi_3_with_every_endpoint_of_the_contract():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert schema["openapi"].startswith("3.")
    for path, methods in CONTRACT.items():
        assert methods <= set(schema["paths"][path]), path
    assert schema["components"]["securitySchemes"]["ApiKey"]["in"] == "header"
    deletion = schema["components"]["schemas"]["Deletion"]["properties"]
    assert set(deletion) == {
        "id",
        "kf_account",
        "status",
        "reason",
        "errcode",
        "errmsg",
        "attempts",
        "created_at",
        "finished_at",
    }
    post = schema["paths"]["/api/v1/deletions/"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in post["parameters"]}
    assert "202" in post["responses"]


def test_schema_is_served_as_yaml_by_default_and_needs_no_key():
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content


def test_docs_page_renders():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"/api/schema/" in response.content


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("put", "/api/v1/deletions/"),
        ("patch", "/api/v1/deletions/"),
        ("delete", "/api/v1/deletions/"),
        ("post", "/api/v1/deletions/1/"),
        ("delete", "/api/v1/deletions/1/"),
        ("get", "/api/v1/kf-accounts/sync/"),
        ("post", "/api/v1/kf-accounts/"),
        ("get", "/api/v1/kf-accounts/kf1@shop/"),
        ("post", "/api/v1/authorizer/"),
    ],
)
def test_wrong_methods_are_405_with_the_error_envelope(make_authorizer, api_client_for, method, url):
    client = api_client_for(make_authorizer())
    response = getattr(client, method)(url)
    assert response.status_code == 405, response.content
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_oversized_body_is_refused_not_a_500(make_authorizer, api_client_for):
    client = api_client_for(make_authorizer())
    payload = json.dumps({"kf_accounts": ["a@b" + "x" * 25] * 100_000})  # ~3 MB
    response = client.generic("POST", "/api/v1/deletions/", payload, content_type="application/json")
    assert 400 <= response.status_code < 500, response.status_code
    assert not DeletionRequest.objects.exists()


def test_an_unknown_deletion_id_is_404_with_the_error_envelope(make_authorizer, api_client_for):
    response = api_client_for(make_authorizer()).get("/api/v1/deletions/999999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
