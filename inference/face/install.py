"""Install MediaPipe's face models from the mediapipe wheel on the package registry.

``python -m inference.face.install [--dir D] [--wheel W]``

mediapipe 0.10.21 is the last release whose wheel ships the ``.tflite`` files, and it pins
numpy<2, so it is never installed: pip only downloads the wheel (no dependencies) into a temp
folder, the two files are read out of it, checked against their SHA-256 and written atomically
(temp name + rename). Nothing is fetched from a model hub. Running it again when both files are
in place with the right checksums does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from inference.face.models import (
    MODEL_FILES,
    FaceModelsMissing,
    ModelFile,
    default_model_dir,
    sha256_of,
)

#: The one release whose wheel carries the models (later ones download them from a hub).
MEDIAPIPE_REQUIREMENT = "mediapipe==0.10.21"
#: The models are the same in every wheel of the release: always fetch the same one, so this
#: works from any Python version or machine (the release has no wheel for Python 3.13).
WHEEL_TAGS = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
              "--implementation", "cp", "--abi", "cp311")  # fmt: skip


class ModelChecksumError(FaceModelsMissing):
    """A model read from the wheel is not the expected file: nothing was installed."""


def installed(folder: Path) -> bool:
    """True when every model is in ``folder`` with its expected SHA-256."""
    return all(_is_good(folder / m.name, m) for m in MODEL_FILES)


def _is_good(path: Path, model: ModelFile) -> bool:
    return path.is_file() and sha256_of(path) == model.sha256


def download_wheel(into: Path) -> Path:
    """Download the mediapipe wheel (no dependencies, never installed) with this venv's pip."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", *WHEEL_TAGS, MEDIAPIPE_REQUIREMENT, "--dest", str(into),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    wheels = sorted(into.glob("mediapipe-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise FaceModelsMissing(
            f"pip could not download {MEDIAPIPE_REQUIREMENT} (which carries the face models): "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}"
        )
    return wheels[0]


def extract_models(wheel: Path, folder: Path) -> list[Path]:
    """Copy the models out of ``wheel`` into ``folder``, checked, each written atomically.

    Every file is checked before any is written, so a bad wheel leaves ``folder`` as it was.
    """
    contents: dict[ModelFile, bytes] = {}
    with zipfile.ZipFile(wheel) as archive:
        for model in MODEL_FILES:
            try:
                data = archive.read(model.member)
            except KeyError:
                raise ModelChecksumError(
                    f"{wheel.name} has no {model.member}: it is not the expected "
                    f"{MEDIAPIPE_REQUIREMENT} wheel. Nothing was installed."
                ) from None
            found = hashlib.sha256(data).hexdigest()
            if found != model.sha256:
                raise ModelChecksumError(
                    f"{model.member} in {wheel.name} has SHA-256 {found}, expected "
                    f"{model.sha256}: refusing to install it (the download may be damaged or "
                    "tampered with). Nothing was installed; run the command again."
                )
            contents[model] = data
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for model, data in contents.items():
        written.append(_write_atomically(folder / model.name, data))
    return written


def _write_atomically(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def install(folder: Path | None = None, *, wheel: Path | None = None) -> bool:
    """Make sure the face models are in ``folder`` (default: :func:`default_model_dir`).

    Returns False when they already were (nothing done), True when they were installed.
    ``wheel`` uses an already downloaded mediapipe wheel instead of asking pip. A file in
    ``folder`` with the wrong checksum is replaced; a wrong file in the wheel is refused with
    :class:`ModelChecksumError` and never written.
    """
    folder = folder or default_model_dir()
    if installed(folder):
        return False
    if wheel is not None:
        extract_models(wheel, folder)
    else:
        with tempfile.TemporaryDirectory(prefix="heygem-mediapipe-") as tmp:
            extract_models(download_wheel(Path(tmp)), folder)
    if not installed(folder):  # e.g. a concurrent writer or a full disk
        raise FaceModelsMissing(f"The face models in {folder} did not verify after installing.")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m inference.face.install",
        description="Install MediaPipe's face detector and face mesh models (SHA-256 checked).",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help=f"model folder (default: {default_model_dir()})"
    )
    parser.add_argument(
        "--wheel", type=Path, default=None, help="use this mediapipe-0.10.21 wheel, no download"
    )
    args = parser.parse_args(argv)
    folder = args.dir or default_model_dir()
    try:
        changed = install(folder, wheel=args.wheel)
    except FaceModelsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"== face models {'installed in' if changed else 'already in'} {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
