"""One helper that reads every setting from the environment.

Development gets safe defaults; in production (``DJANGO_ENV=production``) a value marked
``required_in_production`` must be set, so a forgotten secret fails start-up instead of
silently running with a development default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_UNSET = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def environment_name() -> str:
    name = os.environ.get("DJANGO_ENV", "development").strip().lower()
    if name not in {"development", "production", "test"}:
        raise ImproperlyConfigured(
            f"DJANGO_ENV={name!r} is not known: use development, test or production."
        )
    return name


def _to_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {raw!r}")


def _to_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


CASTS: dict[type, Callable[[str], Any]] = {
    bool: _to_bool,
    int: int,
    float: float,
    str: str,
    list: _to_list,
}


def env(
    name: str,
    default: Any = _UNSET,
    *,
    cast: type = str,
    required_in_production: bool = False,
) -> Any:
    """Read ``name`` from the environment, cast it, or fall back to ``default``.

    Raises ImproperlyConfigured with the variable's name when a value cannot be cast, when a
    value without default is missing, or when a ``required_in_production`` value is missing in
    production.
    """
    raw = os.environ.get(name)
    if raw is None:
        if required_in_production and environment_name() == "production":
            raise ImproperlyConfigured(f"{name} must be set when DJANGO_ENV=production.")
        if default is _UNSET:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default
    try:
        return CASTS[cast](raw)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid {cast.__name__}: {exc}") from exc
