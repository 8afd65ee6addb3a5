"""One helper that reads every setting from the environment.

Development gets safe defaults; in production (``DJANGO_ENV=production``) a value marked
``required_in_production`` must be set, so a forgotten secret fails start-up instead of
silently running with a development default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
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


def installation_secret(var_dir: Path) -> str:
    """The secret key of this installation outside production: made on first run, kept in
    ``var_dir/secret_key`` (readable by this user only; ``var/`` is never committed), and
    shared by every process of the installation (web and workers sign with it)."""
    path = Path(var_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
        try:
            os.link(temp, path)  # appears whole or not at all; the first process wins
        except FileExistsError:
            pass  # another process of this installation made it just now: use that one
        finally:
            temp.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ImproperlyConfigured(f"{path} does not hold a secret key: delete it to make one.")
    return key
