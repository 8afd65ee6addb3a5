"""What engines exist and whether they can run here, without importing torch.

The web process lists engines on every "new batch" form and checks the choice on submit;
importing the engines themselves (torch, model code) would cost a web worker seconds and
hundreds of MB on its first form. The render worker imports the engines, which take their
names, labels and availability rules from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The engine used when none is chosen.
DEFAULT_ENGINE = "warp"
#: The environment variable wav2lip reads its checkpoint path from when none is given.
CHECKPOINT_ENV = "WAV2LIP_CHECKPOINT"


@dataclass(frozen=True)
class EngineInfo:
    """An engine as the UI lists it: whether it can run here, and if not, why."""

    name: str
    label: str
    available: bool
    reason: str = ""
    description: str = ""


@dataclass(frozen=True)
class EngineSpec:
    name: str
    label: str
    description: str
    needs_checkpoint: bool = False


SPECS: dict[str, EngineSpec] = {
    "warp": EngineSpec(
        "warp",
        "Warp (no model weights)",
        "Moves the lips and jaw with the loudness of speech. Fast, runs anywhere, no weights.",
    ),
    "wav2lip": EngineSpec(
        "wav2lip",
        "Wav2Lip",
        "Regenerates the lower face with the Wav2Lip model: accurate lips, needs the model "
        "weights and is best on a GPU.",
        needs_checkpoint=True,
    ),
}


def engine_names() -> list[str]:
    """Names of all known engines, the default first."""
    return sorted(SPECS, key=lambda n: (n != DEFAULT_ENGINE, n))


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | None) -> Path | None:
    chosen = checkpoint if checkpoint else os.environ.get(CHECKPOINT_ENV, "")
    return Path(chosen) if chosen else None


def checkpoint_problem(checkpoint: Path | None) -> str:
    """Why a checkpoint cannot be used ('' when the file is there and readable; its content
    is only checked when a render loads it)."""
    if checkpoint is None:
        return (
            f"no model weights: set {CHECKPOINT_ENV} to the path of wav2lip.pth / wav2lip_gan.pth"
        )
    if not checkpoint.is_file():
        return (
            f"{CHECKPOINT_ENV} points to {checkpoint}, which does not exist: set it "
            "to the path of wav2lip.pth / wav2lip_gan.pth"
        )
    if not os.access(checkpoint, os.R_OK):
        return f"{checkpoint} is not readable by this process"
    return ""


def engine_info(name: str, *, checkpoint: str | os.PathLike[str] | None = None) -> EngineInfo:
    spec = SPECS[name]
    reason = checkpoint_problem(resolve_checkpoint(checkpoint)) if spec.needs_checkpoint else ""
    return EngineInfo(spec.name, spec.label, not reason, reason, spec.description)


def list_engines(*, checkpoint: str | os.PathLike[str] | None = None) -> list[EngineInfo]:
    """All engines with their availability (cheap: nothing is imported or loaded)."""
    return [engine_info(name, checkpoint=checkpoint) for name in engine_names()]
