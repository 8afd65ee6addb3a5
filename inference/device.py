"""Choose the torch device a render runs on."""

from __future__ import annotations

import os

import torch

from inference.errors import InferenceError

#: Environment variable that overrides the automatic choice ("cpu", "cuda", "cuda:1", ...).
DEVICE_ENV = "INFERENCE_DEVICE"


def pick_device(override: str | None = None) -> torch.device:
    """Return the device to render on.

    ``override`` (or, when it is empty, the ``INFERENCE_DEVICE`` environment variable) names a
    device such as ``"cpu"`` or ``"cuda:0"``; ``"auto"`` or nothing means CUDA when
    ``torch.cuda.is_available()``, else the CPU. Asking for CUDA on a machine without it is a
    configuration mistake and raises :class:`InferenceError` rather than silently using the CPU.
    """
    wanted = (override or os.environ.get(DEVICE_ENV, "")).strip().lower()
    if wanted in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except (RuntimeError, ValueError) as exc:
        raise InferenceError(
            f"Unknown inference device {wanted!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InferenceError(
                f"Inference device {wanted!r} was requested but CUDA is not available on this "
                "machine: set INFERENCE_DEVICE=cpu or install a CUDA build of torch."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InferenceError(
                f"Inference device {wanted!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    elif device.type != "cpu":
        raise InferenceError(f"Unsupported inference device {wanted!r}: use 'cpu' or 'cuda:N'.")
    return device
