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
#: The environment variable musetalk reads its model folder from when none is given.
MUSETALK_ENV = "MUSETALK_DIR"
#: What the MuseTalk folder must hold, in the layout the release's ``download_weights.sh``
#: makes: for each piece, the paths that may provide it (any one will do) and what it is.
MUSETALK_FILES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("musetalkV15/unet.pth",), "the MuseTalk 1.5 UNet weights"),
    (("musetalkV15/musetalk.json",), "the UNet config released with them"),
    (("sd-vae/config.json",), "the config of the sd-vae-ft-mse VAE (diffusers AutoencoderKL)"),
    (
        ("sd-vae/diffusion_pytorch_model.safetensors", "sd-vae/diffusion_pytorch_model.bin"),
        "the sd-vae-ft-mse VAE weights",
    ),
    (("whisper/config.json",), "the config of whisper-tiny (transformers WhisperModel)"),
    (("whisper/model.safetensors", "whisper/pytorch_model.bin"), "the whisper-tiny weights"),
    (("whisper/preprocessor_config.json",), "the Whisper feature extractor settings"),
)


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
    needs_model_dir: bool = False


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
    "musetalk": EngineSpec(
        "musetalk",
        "MuseTalk 1.5",
        "Regenerates the lower face at 256x256 with MuseTalk 1.5 (one pass of a latent UNet "
        "per frame): sharp lips and teeth, needs the model folder and a GPU to be quick.",
        needs_model_dir=True,
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


def resolve_musetalk_dir(folder: str | os.PathLike[str] | None) -> Path | None:
    """The MuseTalk model folder: ``folder`` when given, else ``MUSETALK_DIR`` (None if unset)."""
    chosen = folder if folder else os.environ.get(MUSETALK_ENV, "")
    return Path(chosen) if chosen else None


def musetalk_layout() -> str:
    """The release layout in one line, for messages."""
    return (
        "musetalkV15/ (unet.pth, musetalk.json), sd-vae/ (config.json + "
        "diffusion_pytorch_model.safetensors or .bin) and whisper/ (config.json, model.safetensors "
        "or pytorch_model.bin, preprocessor_config.json)"
    )


def musetalk_problem(folder: Path | None) -> str:
    """Why a MuseTalk folder cannot be used ('' when every piece is there and readable; the
    files' content is only checked when a render loads them). Names each missing piece."""
    if folder is None:
        return (
            f"no model folder: set {MUSETALK_ENV} to a folder holding {musetalk_layout()}, as "
            "the MuseTalk release's download_weights.sh lays them out"
        )
    if not folder.is_dir():
        return (
            f"{MUSETALK_ENV} points to {folder}, which is not a folder: it should hold "
            f"{musetalk_layout()}"
        )
    missing, unreadable = [], []
    for paths, what in MUSETALK_FILES:
        found = [folder / p for p in paths if (folder / p).is_file()]
        if not found:
            missing.append(f"{' or '.join(paths)} ({what})")
        elif not any(os.access(f, os.R_OK) for f in found):
            unreadable.append(str(found[0]))
    if missing:
        return f"the MuseTalk folder {folder} is missing " + "; ".join(missing)
    if unreadable:
        return f"{', '.join(unreadable)} not readable by this process"
    return ""


def engine_info(
    name: str,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    musetalk_dir: str | os.PathLike[str] | None = None,
) -> EngineInfo:
    spec = SPECS[name]
    reason = ""
    if spec.needs_checkpoint:
        reason = checkpoint_problem(resolve_checkpoint(checkpoint))
    elif spec.needs_model_dir:
        reason = musetalk_problem(resolve_musetalk_dir(musetalk_dir))
    return EngineInfo(spec.name, spec.label, not reason, reason, spec.description)


def list_engines(
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    musetalk_dir: str | os.PathLike[str] | None = None,
) -> list[EngineInfo]:
    """All engines with their availability (cheap: nothing is imported or loaded)."""
    return [
        engine_info(name, checkpoint=checkpoint, musetalk_dir=musetalk_dir)
        for name in engine_names()
    ]
