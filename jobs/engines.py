"""The lip-sync engines of this installation, as the app sees them: one place that hands the
engines their model files from the settings (WAV2LIP_CHECKPOINT, MUSETALK_DIR).

Members are offered only the engines that can run; why one cannot is for operators, who see
it in ``manage.py check`` (heygem_site.checks) — never in the batch form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from inference.catalog import EngineInfo
    from inference.engines.base import Engine


def engine_files() -> dict[str, Any]:
    """The model files the engines are given (None: not set up)."""
    return {
        "checkpoint": settings.WAV2LIP_CHECKPOINT or None,
        "musetalk_dir": settings.MUSETALK_DIR or None,
    }


def all_engines() -> list[EngineInfo]:
    """Every engine with whether it can run here and, if not, why (for operators)."""
    from inference.catalog import list_engines  # torch-free: cheap in a web process

    return list_engines(**engine_files())


def offered_engines() -> list[EngineInfo]:
    """The engines members may choose: those that can run here, the default first."""
    return [engine for engine in all_engines() if engine.available]


def load_engine(name: str) -> Engine:
    """The engine ``name`` ready to render (render workers; imports torch)."""
    from inference.engines import get_engine

    return get_engine(name, **engine_files())
