"""Reading configuration from the environment, failing loudly.

Every value the service reads from the environment goes through these helpers so that a malformed
value stops start-up with an error naming the variable, instead of surfacing later as a strange bug.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import overload

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@overload
def env_str(name: str, default: str, *, environ: Mapping[str, str] = ...) -> str: ...
@overload
def env_str(name: str, default: None = None, *, environ: Mapping[str, str] = ...) -> str | None: ...
def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] = os.environ) -> str | None:
    """The stripped value of `name`, or `default` when it is unset or blank."""
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] = os.environ) -> bool:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true/false/1/0, got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] = os.environ) -> list[str]:
    value = env_str(name, environ=environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


@overload
def env_url(name: str, default: str, *, schemes: tuple[str, ...], environ: Mapping[str, str] = ...) -> str: ...
@overload
def env_url(name: str, default: None, *, schemes: tuple[str, ...], environ: Mapping[str, str] = ...) -> str | None: ...
def env_url(
    name: str, default: str | None, *, schemes: tuple[str, ...], environ: Mapping[str, str] = os.environ
) -> str | None:
    value = env_str(name, default, environ=environ)
    if value is None:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in schemes or (not rest and scheme.lower() != "filesystem"):
        raise ImproperlyConfigured(f"{name} must be a URL with one of the schemes {', '.join(schemes)}, got {value!r}")
    return value.rstrip("/") if scheme.lower() in ("http", "https") else value
