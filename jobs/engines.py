"""The lip-sync engines of this installation, as the app sees them: one place that hands the
engines their model files from the settings (WAV2LIP_CHECKPOINT, MUSETALK_DIR).

Members are offered only the engines that can run; why one cannot is for operators, who see
it in ``manage.py check`` (heygem_site.checks) — never in the batch form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.translation import gettext as _

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


def engine_label(engine: EngineInfo) -> str:
    """The engine's name as the form lists it, in the active language (the names themselves,
    Warp, Wav2Lip, MuseTalk, are the same in every language)."""
    if engine.name == "warp":
        return _("%(name)s (no model weights)") % {"name": "Warp"}
    return engine.label


def label_for(name: str) -> str:
    """The label of the engine called ``name`` (the name itself when there is no such engine)."""
    from inference.catalog import SPECS

    spec = SPECS.get(name)
    return spec.label if spec else name


def engine_description(engine: EngineInfo) -> str:
    """What the engine does, in the active language (``inference.catalog`` has the English)."""
    described = {
        "warp": lambda: _(
            "Moves the lips and jaw with the loudness of speech. Fast, runs anywhere, no weights."
        ),
        "wav2lip": lambda: _(
            "Regenerates the lower face with the Wav2Lip model: accurate lips, needs the model "
            "weights and is best on a GPU."
        ),
        "musetalk": lambda: _(
            "Regenerates the lower face at 256x256 with MuseTalk 1.5 (one pass of a latent UNet "
            "per frame): sharp lips and teeth, needs the model folder and a GPU to be quick."
        ),
    }.get(engine.name)
    return described() if described else engine.description


def load_engine(name: str) -> Engine:
    """The engine ``name`` ready to render (render workers; imports torch)."""
    from inference.engines import get_engine

    return get_engine(name, **engine_files())
