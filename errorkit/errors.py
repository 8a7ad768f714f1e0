"""``DomainError``: code, message, HTTP status, the fields at fault and when to retry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class DomainError(Exception):
    """A refusal a service can explain to its caller.

    Subclasses set ``code`` (machine-readable, stable: clients branch on it) and ``status`` (the
    HTTP status it answers); an instance may override either. ``fields`` maps each input field at
    fault to its message (a field-level validation error); ``retry_after`` is the seconds after
    which the same request may succeed (the ``Retry-After`` header).
    """

    code: ClassVar[str] = "invalid_input"
    status: ClassVar[int] = 400

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        fields: Mapping[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        if field is not None:
            fields = {field: message, **(fields or {})}
        if not message and fields:
            message = "; ".join(f"{name}: {text}" for name, text in fields.items())
        super().__init__(message or type(self).__name__)
        self.message = message or type(self).__name__
        if code is not None:
            self.code = code  # type: ignore[misc]  # an instance may narrow its class's code
        if status is not None:
            self.status = status  # type: ignore[misc]
        self.fields: dict[str, str] = dict(fields or {})
        self.retry_after = retry_after
