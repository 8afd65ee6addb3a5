"""Registry of lip-sync engines.

Every engine has the same interface (:class:`inference.engines.base.Engine`)::

    engine = get_engine("warp")
    result = engine.render(avatar, audio, out, progress, device=None, batch_size=16,
                           should_cancel=lambda: False)

``list_engines()`` tells the UI which engines exist and whether they can run here; choosing
an unavailable one raises :class:`EngineUnavailable` with the reason.
"""

from __future__ import annotations

import os

from inference.catalog import DEFAULT_ENGINE, EngineInfo, engine_names
from inference.engines.base import CancelFn, Engine, ProgressFn, RenderPlan
from inference.engines.musetalk import MuseTalkEngine
from inference.engines.pipeline import FrameBatch, pingpong_indices
from inference.engines.warp import WarpEngine
from inference.engines.wav2lip import Wav2LipEngine
from inference.errors import EngineUnavailable

_ENGINES: dict[str, type[Engine]] = {
    WarpEngine.name: WarpEngine,
    Wav2LipEngine.name: Wav2LipEngine,
    MuseTalkEngine.name: MuseTalkEngine,
}

PathArg = str | os.PathLike[str] | None


def _build(name: str, checkpoint: PathArg, musetalk_dir: PathArg) -> Engine:
    try:
        cls = _ENGINES[name]
    except KeyError:
        known = ", ".join(engine_names())
        raise EngineUnavailable(f"Unknown engine {name!r}: choose one of {known}.") from None
    if cls is Wav2LipEngine:
        return Wav2LipEngine(checkpoint=checkpoint)
    if cls is MuseTalkEngine:
        return MuseTalkEngine(musetalk_dir=musetalk_dir)
    return cls()


def get_engine(
    name: str = DEFAULT_ENGINE,
    *,
    checkpoint: PathArg = None,
    musetalk_dir: PathArg = None,
    require_available: bool = True,
) -> Engine:
    """Return the engine called ``name``.

    ``checkpoint`` is the model file of engines that need one (wav2lip: the
    ``WAV2LIP_CHECKPOINT`` setting; when omitted, that environment variable is read);
    ``musetalk_dir`` is musetalk's model folder (else ``MUSETALK_DIR``). Raises
    :class:`EngineUnavailable` for an unknown name, or - unless ``require_available`` is false
    - for an engine that cannot run here, with the reason.
    """
    engine = _build(name, checkpoint, musetalk_dir)
    if require_available:
        ok, reason = engine.availability()
        if not ok:
            raise EngineUnavailable(f"The {engine.label} engine is not available: {reason}")
    return engine


def list_engines(*, checkpoint: PathArg = None, musetalk_dir: PathArg = None) -> list[EngineInfo]:
    """All engines with their availability (cheap: no model is loaded)."""
    return [_build(name, checkpoint, musetalk_dir).info() for name in engine_names()]


__all__ = [
    "DEFAULT_ENGINE",
    "CancelFn",
    "Engine",
    "EngineInfo",
    "FrameBatch",
    "MuseTalkEngine",
    "ProgressFn",
    "RenderPlan",
    "WarpEngine",
    "Wav2LipEngine",
    "engine_names",
    "get_engine",
    "list_engines",
    "pingpong_indices",
]
