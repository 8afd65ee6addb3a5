"""Lip-sync rendering library: media I/O through ffmpeg, audio features, face boxes, engines.

A plain library (no Django imports) so it can be run and tested alone. The names most callers
need are re-exported here, lazily, so that ``import inference.media`` in a web process does not
pay for importing torch::

    from inference import get_engine, list_engines, probe, make_thumbnail

    engine = get_engine("warp")
    result = engine.render(avatar, audio, out, progress=lambda done, total: None)
"""

from __future__ import annotations

import importlib
from typing import Any

from inference.errors import (
    EngineUnavailable,
    InferenceError,
    MediaError,
    NoFaceError,
    RenderCanceled,
)

_LAZY = {
    "MediaInfo": "inference.media",
    "RenderResult": "inference.media",
    "make_thumbnail": "inference.media",
    "probe": "inference.media",
    "EngineInfo": "inference.engines",
    "get_engine": "inference.engines",
    "list_engines": "inference.engines",
    "pick_device": "inference.device",
}

__all__ = [
    "EngineUnavailable",
    "InferenceError",
    "MediaError",
    "NoFaceError",
    "RenderCanceled",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inference' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
