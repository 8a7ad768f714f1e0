"""Log formats: JSON (one object per line) when LOG_FORMAT=json, plain text otherwise.

Both carry the request id, merchant appid and deletion id of the line's context. Neither adds
anything a log call did not pass: secrets are kept out at the source (the WeChat client scrubs its
errors, services log ids and codes only); the JSON formatter also masks query strings that name a
token, as a last line of defence against a URL logged by a library.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from observability import context
from wechat.scrub import mask_secrets

# Attributes every LogRecord has: anything else on the record came from `extra=` and is kept.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def mask(text: str) -> str:
    return mask_secrets(text)


class ContextFilter(logging.Filter):
    """Puts the context on the record, so both formats (and any handler) can use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.snapshot().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = mask(super().format(record))
        ids = [
            f"{label}={value}"
            for label, value in (
                ("request", getattr(record, "request_id", "")),
                ("appid", getattr(record, "merchant_appid", "")),
                ("platform", getattr(record, "platform", "")),
                ("deletion", getattr(record, "deletion_id", None)),
            )
            if value not in ("", None)
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "request_id": getattr(record, "request_id", "") or None,
            "merchant_appid": getattr(record, "merchant_appid", "") or None,
            "deletion_id": getattr(record, "deletion_id", None),
            # The component appid of a platform other than the default one (null: the default).
            "platform": getattr(record, "platform", "") or None,
            "process": record.process,
        }
        for key, value in vars(record).items():
            # Scalars passed with `extra=` (Django's status_code, ids); objects (Celery's task data,
            # Django's request) are left out: their repr is noise and may hold anything.
            if key in _RECORD_FIELDS or key in entry or key.startswith("_"):
                continue
            if isinstance(value, (int, float, bool)):
                entry[key] = value
            elif isinstance(value, str) and len(value) <= 200:
                entry[key] = mask(value)
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        # One object per line, whatever the message holds: json.dumps escapes newlines.
        return json.dumps(entry, ensure_ascii=False, default=str)
