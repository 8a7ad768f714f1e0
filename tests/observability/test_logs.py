"""Log lines: JSON objects (LOG_FORMAT=json) or plain text, with the request's and task's ids."""

from __future__ import annotations

import json
import logging

import pytest

from observability import context
from observability.logs import ContextFilter, JsonFormatter, PlainFormatter


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("kfaccounts.services", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    ContextFilter().filter(record)
    return record


def test_a_json_line_is_one_object_with_the_request_merchant_and_deletion() -> None:
    with context.bound(request="req-1", appid="wx0123456789abcdef", deletion=42):
        line = JsonFormatter().format(_record("deletion %s\nclaimed", 42, status_code=202))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "deletion 42\nclaimed"
    assert (entry["request_id"], entry["merchant_appid"], entry["deletion_id"]) == ("req-1", "wx0123456789abcdef", 42)
    assert entry["level"] == "INFO" and entry["logger"] == "kfaccounts.services"
    assert entry["status_code"] == 202


def test_outside_a_request_the_ids_are_null() -> None:
    context.start(request="")  # what a task or a request does first: nothing left from before
    entry = json.loads(JsonFormatter().format(_record("beat tick")))
    assert (entry["request_id"], entry["merchant_appid"], entry["deletion_id"]) == (None, None, None)


def test_a_token_in_a_logged_url_is_masked_in_both_formats() -> None:
    message = "GET /cgi-bin/customservice/getkflist?access_token=SECRET_TOKEN_VALUE&x=1"
    assert "SECRET_TOKEN_VALUE" not in JsonFormatter().format(_record(message))
    assert "SECRET_TOKEN_VALUE" not in PlainFormatter().format(_record(message))


def test_objects_passed_as_extra_are_left_out_of_json() -> None:
    entry = json.loads(JsonFormatter().format(_record("x", request=object(), data={"args": [1]})))
    assert "request" not in entry and "data" not in entry


def test_plain_lines_carry_the_ids_at_the_end() -> None:
    with context.bound(request="req-2", appid="wxabc", deletion=7):
        line = PlainFormatter().format(_record("done"))
    assert line.endswith("done [request=req-2 appid=wxabc deletion=7]")


@pytest.mark.django_db
def test_every_response_names_its_request_id(client) -> None:
    assert len(client.get("/healthz")["X-Request-ID"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="proxy-abc.123")["X-Request-ID"] == "proxy-abc.123"
    # Not echoed when it is not a sane id (a header injection, a megabyte): a new one instead.
    assert client.get("/healthz", HTTP_X_REQUEST_ID="bad id\r\nx")["X-Request-ID"] != "bad id\r\nx"


@pytest.mark.django_db
def test_an_api_call_logs_with_its_merchant(client, make_authorizer, api_client_for, caplog) -> None:
    merchant = make_authorizer()
    api = api_client_for(merchant)
    with caplog.at_level(logging.WARNING):
        api.get("/api/v1/deletions/999999/")
    records = [r for r in caplog.records if "999999" in r.getMessage()]
    assert records and records[0].merchant_appid == merchant.appid


def test_lines_about_another_platform_name_it_and_the_default_ones_read_as_before() -> None:
    with context.bound(request="req-3", appid="wxabc", deletion=8, component_appid="wx00000000000000b2"):
        plain = PlainFormatter().format(_record("done"))
        entry = json.loads(JsonFormatter().format(_record("done")))
    assert plain.endswith("done [request=req-3 appid=wxabc platform=wx00000000000000b2 deletion=8]")
    assert entry["platform"] == "wx00000000000000b2"
    with context.bound(request="req-4", appid="wxabc"):
        assert json.loads(JsonFormatter().format(_record("done")))["platform"] is None


@pytest.mark.django_db
def test_an_api_call_of_another_platforms_merchant_logs_with_its_platform(
    make_authorizer, platform_b, api_client_for, caplog
) -> None:
    api = api_client_for(make_authorizer(platform=platform_b))
    with caplog.at_level(logging.WARNING):
        api.get("/api/v1/deletions/999999/")
    records = [r for r in caplog.records if "999999" in r.getMessage()]
    assert records and records[0].platform == platform_b.component_appid
