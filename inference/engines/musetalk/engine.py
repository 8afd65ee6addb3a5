"""The MuseTalk engine: the render pipeline's batches through crop -> VAE -> UNet -> VAE -> paste.

A :class:`FrameBatch` goes through the networks as one batch: the crops of frames not seen
before are encoded together, then every frame's latents and audio window make one UNet pass and
one VAE decode. The latents of an avatar frame do not depend on the audio, so they are kept
(:class:`AvatarLatents`): frames the ping-pong plays again skip the encoder, and so does every
later job on the same avatar when they are stored - on their own (:meth:`AvatarLatents.save`)
or inside a prepared avatar (the engine's ``extend_prep`` hook fills ``prep.extra["musetalk"]``,
which a render given that prep reads back).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from inference.catalog import SPECS, musetalk_problem, resolve_musetalk_dir
from inference.device import pick_device
from inference.engines.base import Engine, RenderPlan
from inference.engines.musetalk.blending import CROP_VERSION, crop_boxes, face_input, paste_face
from inference.engines.musetalk.models import (
    MuseTalkModels,
    audio_windows,
    decode_faces,
    encode_faces,
    load_models,
    predict_latents,
    whisper_features,
)
from inference.engines.pipeline import FrameBatch
from inference.errors import InferenceError

log = logging.getLogger(__name__)

#: Crops smaller than this (pixels per side) are left alone: no face worth redrawing.
MIN_CROP = 16


class AvatarLatents:
    """The UNet input latents of an avatar's frames, with the crop each was taken from.

    Keyed by avatar frame number; each entry is the crop rectangle ``[x0, y0, x1, y1]`` and its
    ``(8, h, w)`` latents (masked face + whole face). They depend on the avatar, its face and
    the VAE but not on the audio, so one avatar's are computed once and serve every job on it:
    a render fills in the frames it meets (``engine.avatar_latents`` afterwards). As arrays
    (:meth:`to_arrays`, the form a prepared avatar's ``extra`` holds) or a file (:meth:`save`,
    :meth:`load`) they go with the asset. The caller keys them by avatar; the engine only checks
    that the frame size, the VAE and the crop geometry are the same.
    """

    FORMAT: ClassVar[str] = "heygem.musetalk.avatar-latents"
    VERSION: ClassVar[int] = 1

    def __init__(self, frame_size: tuple[int, int], vae_key: str, crop_version: int = CROP_VERSION):
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.vae_key = vae_key
        self.crop_version = crop_version
        self._entries: dict[int, tuple[np.ndarray, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, frame: object) -> bool:
        return frame in self._entries

    def frames(self) -> list[int]:
        """The avatar frame numbers held, in order."""
        return sorted(self._entries)

    def get(self, frame: int) -> tuple[np.ndarray, torch.Tensor]:
        """``(rect, latents)`` of avatar frame ``frame``."""
        return self._entries[frame]

    def put(self, frame: int, rect: np.ndarray, latents: torch.Tensor) -> None:
        """Keep the crop and latents of avatar frame ``frame``."""
        self._entries[int(frame)] = (np.asarray(rect, dtype=np.int64).copy(), latents)

    def matches(self, frame_size: tuple[int, int], vae_key: str) -> bool:
        """Whether these latents fit a render of this frame size with this VAE."""
        return (
            self.frame_size == tuple(frame_size)
            and self.vae_key == vae_key
            and self.crop_version == CROP_VERSION
        )

    # ------------------------------------------------------------------ storage

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays: ``meta`` (JSON), ``frames`` (n,), ``rects`` (n, 4), ``latents``
        (n, 8, h, w) float32."""
        frames = self.frames()
        meta = {
            "format": self.FORMAT,
            "version": self.VERSION,
            "frame_size": list(self.frame_size),
            "vae_key": self.vae_key,
            "crop_version": self.crop_version,
        }
        rects = [self._entries[f][0] for f in frames]
        latents = [self._entries[f][1].detach().float().cpu().numpy() for f in frames]
        return {
            "meta": np.array(json.dumps(meta)),
            "frames": np.asarray(frames, dtype=np.int64),
            "rects": np.stack(rects) if rects else np.zeros((0, 4), np.int64),
            "latents": np.stack(latents) if latents else np.zeros((0,), np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> AvatarLatents:
        """The inverse of :meth:`to_arrays` (raises ``KeyError`` / ``ValueError`` on others)."""
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != cls.FORMAT or meta.get("version") != cls.VERSION:
            raise ValueError("not MuseTalk avatar latents of this version")
        out = cls(tuple(meta["frame_size"]), str(meta["vae_key"]), int(meta["crop_version"]))
        latents = torch.from_numpy(np.asarray(arrays["latents"], dtype=np.float32))
        frames, rects = np.asarray(arrays["frames"]), np.asarray(arrays["rects"])
        if not (len(frames) == len(rects) == len(latents)):
            raise ValueError("frames, rects and latents differ in length")
        for frame, rect, lat in zip(frames.tolist(), rects, latents, strict=True):
            out.put(frame, rect, lat)
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write them to ``path`` (``.npz``): a temp name in the same folder, then renamed."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".latents.", suffix=".npz.part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **self.to_arrays())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AvatarLatents:
        """Read a file written by :meth:`save` (arrays only: nothing is unpickled)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls.from_arrays({key: data[key] for key in data.files})
        except Exception as exc:
            raise InferenceError(
                f"The prepared avatar file {Path(path).name} could not be read "
                f"({exc.__class__.__name__}); delete it and it will be made again."
            ) from exc


class _PrepArrays(Mapping[str, np.ndarray]):
    """:meth:`AvatarLatents.to_arrays`, built only when read (when the prep is saved): a
    preparation adds frames batch by batch and must not re-stack them all every time."""

    def __init__(self, latents: AvatarLatents) -> None:
        self.latents = latents

    def __getitem__(self, key: str) -> np.ndarray:
        return self.latents.to_arrays()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("meta", "frames", "rects", "latents"))

    def __len__(self) -> int:
        return 4

    def items(self) -> Any:
        return self.latents.to_arrays().items()


class MuseTalkEngine(Engine):
    """MuseTalk 1.5 lip sync from a user-supplied model folder (``MUSETALK_DIR``)."""

    name: ClassVar[str] = "musetalk"
    label: ClassVar[str] = SPECS["musetalk"].label
    description: ClassVar[str] = SPECS["musetalk"].description
    default_batch_size: ClassVar[int] = 8

    def __init__(
        self,
        *,
        musetalk_dir: str | os.PathLike[str] | None = None,
        avatar_latents: AvatarLatents | None = None,
    ) -> None:
        self.folder = resolve_musetalk_dir(musetalk_dir)
        #: The latents of the avatar of the last render (or the ones given): see
        #: :class:`AvatarLatents`.
        self.avatar_latents = avatar_latents
        self._models: MuseTalkModels | None = None
        self._models_key: tuple[str, float, str] | None = None
        self._audio: torch.Tensor | None = None
        self._preparing: tuple[object, AvatarLatents] | None = None

    def availability(self) -> tuple[bool, str]:
        """Available when every file of the release layout is there (loaded only to render)."""
        reason = musetalk_problem(self.folder)
        return not reason, reason

    def models(self, device: torch.device) -> MuseTalkModels:
        """The loaded networks (cached while the UNet file is unchanged)."""
        assert self.folder is not None
        weights = self.folder / "musetalkV15" / "unet.pth"
        key = (str(self.folder), weights.stat().st_mtime, str(device))
        if self._models is None or self._models_key != key:
            self._models = None  # free the old ones before loading
            self._models = load_models(self.folder, device)
            self._models_key = key
        return self._models

    def prepare(self, plan: RenderPlan) -> None:
        """Load the networks, encode the whole clip's audio, pick the avatar latents: a
        prepared avatar's, else the engine's own if they fit, else new ones."""
        models = self.models(plan.device)
        self._preparing = None  # a finished preparation's latents live in its prep now
        self._audio = whisper_features(models, plan.samples)
        size = (plan.width, plan.height)
        prepared = _prepared_latents(plan, self.name)
        if prepared is not None and prepared.matches(size, models.vae_key):
            self.avatar_latents = prepared
        elif self.avatar_latents is None or not self.avatar_latents.matches(size, models.vae_key):
            self.avatar_latents = AvatarLatents(size, models.vae_key)

    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        """Redraw the lower face of every frame of ``batch`` (one network batch). Frames whose
        latents are known keep the crop they were encoded from."""
        assert self._audio is not None and batch.boxes is not None
        models = self.models(plan.device)
        cache = self.avatar_latents
        assert cache is not None
        encode_new_frames(batch, models, cache)
        keep = [k for k, s in enumerate(batch.src_index) if int(s) in cache]
        if not keep:
            return
        src = [int(batch.src_index[k]) for k in keep]
        latents = torch.stack([cache.get(s)[1].to(models.device, models.dtype) for s in src])
        audio = audio_windows(self._audio, plan.fps_value, batch.out_index[keep])
        faces = decode_faces(models, predict_latents(models, latents, audio))
        y_pl, u_pl, v_pl = batch.planes()
        for j, (k, s) in enumerate(zip(keep, src, strict=True)):
            paste_face(faces[j], y_pl[k], u_pl[k], v_pl[k], cache.get(s)[0])

    def extend_prep(self, prep: Any, batch: FrameBatch) -> None:
        """Encode the avatar frames of ``batch`` into a prepared avatar, under
        ``prep.extra["musetalk"]`` (see :class:`AvatarLatents`). On CUDA when there is one."""
        models = self.models(pick_device())
        if self._preparing is None or self._preparing[0] is not prep:
            latents = AvatarLatents((batch.width, batch.height), models.vae_key)
            self._preparing = (prep, latents)
            prep.extra[self.name] = _PrepArrays(latents)
        encode_new_frames(batch, models, self._preparing[1])


def _prepared_latents(plan: RenderPlan, name: str) -> AvatarLatents | None:
    """The latents in the render's prepared avatar, if it has usable ones."""
    prepared = getattr(plan, "prepared", None)
    arrays = getattr(prepared, "extra", {}).get(name) if prepared is not None else None
    if not arrays:
        return None
    if isinstance(arrays, _PrepArrays):
        return arrays.latents
    try:
        return AvatarLatents.from_arrays(arrays)
    except (KeyError, ValueError) as exc:
        log.warning("Ignoring the prepared avatar's MuseTalk latents: %s", exc)
        return None


def encode_new_frames(batch: FrameBatch, models: MuseTalkModels, cache: AvatarLatents) -> None:
    """Crop and encode (as one batch) the avatar frames of ``batch`` that ``cache`` lacks."""
    assert batch.boxes is not None
    first_row: dict[int, int] = {}
    for k, s in enumerate(batch.src_index):
        if int(s) not in cache:
            first_row.setdefault(int(s), k)
    if not first_row:
        return
    rows = np.array(list(first_row.values()))
    landmarks = getattr(batch, "landmarks", None)
    rects = crop_boxes(
        batch.boxes[rows],
        batch.width,
        batch.height,
        landmarks[rows] if landmarks is not None else None,
    )
    big = (rects[:, 2] - rects[:, 0] >= MIN_CROP) & (rects[:, 3] - rects[:, 1] >= MIN_CROP)
    rows, rects = rows[big], rects[big]
    if not len(rows):
        return
    y_pl, u_pl, v_pl = batch.planes()
    faces = np.stack(
        [face_input(y_pl[k], u_pl[k], v_pl[k], r) for k, r in zip(rows, rects, strict=True)]
    )
    src = batch.src_index[rows]
    for s, rect, lat in zip(src, rects, encode_faces(models, faces, src), strict=True):
        cache.put(int(s), rect, lat)
