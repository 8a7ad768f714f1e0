"""A DomainError becomes the API's envelope in one place: code, message, status, fields, Retry-After."""

from __future__ import annotations

import pickle

from errorkit import DomainError
from platform_app.api_errors import exception_handler


class Busy(DomainError):
    code = "busy"
    status = 429


def test_code_status_message_and_retry_after():
    response = exception_handler(Busy("come back later", retry_after=30), {})
    assert response is not None and response.status_code == 429
    assert response.data == {"error": {"code": "busy", "message": "come back later"}}
    assert response["Retry-After"] == "30"


def test_fields_read_like_a_serializers_errors():
    response = exception_handler(DomainError(fields={"pattern": "too slow", "crontab": "61 is not a minute"}), {})
    assert response is not None and response.status_code == 400
    assert response.data["error"] == {
        "code": "invalid_input",
        "message": "pattern: too slow; crontab: 61 is not a minute",
        "fields": {"pattern": ["too slow"], "crontab": ["61 is not a minute"]},
    }
    one = exception_handler(DomainError("must use https", field="url"), {})
    assert one is not None and one.data["error"]["fields"] == {"url": ["must use https"]}
    assert one.data["error"]["message"] == "url: must use https"


def test_an_instance_may_narrow_its_code_and_status_and_it_survives_pickling():
    error = DomainError("gone", code="gone", status=410)
    response = exception_handler(error, {})
    assert response is not None and (response.status_code, response.data["error"]["code"]) == (410, "gone")
    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.status, again.message) == ("gone", 410, "gone")
