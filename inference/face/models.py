"""Where MediaPipe's two face models live, and loading them into OpenCV's dnn module.

The ``.tflite`` files come from the mediapipe wheel on the package registry (see
:mod:`inference.face.install`); they are checked by SHA-256 before OpenCV reads them, so a
truncated or foreign file fails with the command that fixes it instead of with garbage output.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from inference.errors import InferenceError

#: Environment variable that moves the model folder (default: inside the virtualenv).
MODEL_DIR_ENV = "FACE_MODEL_DIR"


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """One model: its file name here, its path inside the mediapipe wheel, its SHA-256."""

    name: str
    member: str
    sha256: str


DETECTOR = ModelFile(
    "face_detection_short_range.tflite",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
)
MESH = ModelFile(
    "face_landmark.tflite",
    "mediapipe/modules/face_landmark/face_landmark.tflite",
    "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
)
MODEL_FILES = (DETECTOR, MESH)


class FaceModelsMissing(InferenceError):
    """The face model files are not installed (or not the expected ones)."""

    code = "face_models_missing"


def default_model_dir() -> Path:
    """The model folder: ``$FACE_MODEL_DIR`` or ``<venv>/share/heygem/face-models``."""
    configured = os.environ.get(MODEL_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(sys.prefix) / "share" / "heygem" / "face-models"


def install_command(folder: Path | None = None) -> str:
    """The exact command that installs the models (into ``folder`` when not the default)."""
    command = f"{sys.executable} -m inference.face.install"
    if folder is not None and folder != default_model_dir():
        command += f" --dir {folder}"
    return command


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _verified_bytes(path: Path, sha256: str, mtime_ns: int, size: int) -> bytes:
    # Keyed on mtime and size so a reinstall is noticed without re-hashing on every load.
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FaceModelsMissing(
            f"The face model {path} is damaged or not the expected file; reinstall it with: "
            f"{install_command(path.parent)}"
        )
    return data


def model_bytes(model: ModelFile, folder: Path | None = None) -> bytes:
    """The verified bytes of ``model``; :class:`FaceModelsMissing` says how to install it."""
    folder = folder or default_model_dir()
    path = folder / model.name
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FaceModelsMissing(
            f"The face model {model.name} is not installed in {folder}; install it with: "
            f"{install_command(folder)}"
        ) from None
    return _verified_bytes(path, model.sha256, stat.st_mtime_ns, stat.st_size)


def load_net(model: ModelFile, folder: Path | None = None) -> cv2.dnn.Net:
    """A fresh OpenCV network for ``model`` (one per user: cv2 nets are not thread-safe)."""
    data = model_bytes(model, folder)
    net = cv2.dnn.readNetFromTFLite(np.frombuffer(data, dtype=np.uint8))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net
