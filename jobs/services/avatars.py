"""Prepared avatars: an avatar is measured once per engine (landmarks of every frame, plus what
the engine adds, e.g. MuseTalk's reference latents) and the result is stored with the asset,
so a batch of 1 avatar x 50 audio tracks prepares it once and every job reuses it.

The file lives in media storage next to the asset's other files (local folder or bucket):
``prep/<org>/<asset>/<engine>.npz``. A lock in the shared cache makes one worker prepare
while the others wait for its file; a worker that finds no file and no lock holder prepares
itself. A file made by other face models or another format version is made again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache

from core.storage import media as storage
from jobs.models import Asset

if TYPE_CHECKING:
    from inference.engines.base import Engine
    from inference.engines.prepare import AvatarPrep

logger = logging.getLogger(__name__)

#: How often a waiting worker looks for the file another one is preparing.
POLL_S = 0.5


def prep_name(asset: Asset, engine: str) -> str:
    """The stored name of ``asset``'s prepared file for ``engine``."""
    return f"prep/{asset.organization_id}/{asset.pk}/{engine}.npz"


def _lock_key(asset: Asset, engine: str) -> str:
    return f"heygem:avatar-prep:{asset.pk}:{engine}"


def prepared_avatar(
    *,
    asset: Asset,
    engine: Engine,
    avatar: Path,
    scratch: Path,
    should_cancel: Callable[[], bool],
) -> AvatarPrep:
    """The prepared ``asset`` for ``engine``: the stored file when there is a current one,
    else measured now (by this worker, or by the one already doing it) and stored."""
    from inference.errors import RenderCanceled

    name = prep_name(asset, engine.name)
    lease = int(settings.RENDER_LEASE_S)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        prep = _load(name, scratch)
        if prep is not None:
            return prep
        if cache.add(_lock_key(asset, engine.name), holder, timeout=lease):
            try:
                return _prepare(asset, engine, avatar, scratch, name, should_cancel)
            finally:
                cache.delete(_lock_key(asset, engine.name))
        # Another worker prepares it: wait for its file (or for its lock to lapse).
        while cache.get(_lock_key(asset, engine.name)) is not None:
            if should_cancel():
                raise RenderCanceled()
            time.sleep(POLL_S)
            if storage.exists(name):
                break


def _load(name: str, scratch: Path) -> AvatarPrep | None:
    from inference.engines.prepare import AvatarPrep
    from inference.errors import InferenceError

    try:
        return AvatarPrep.load(storage.fetch(name, scratch))
    except FileNotFoundError:
        return None  # not prepared yet (fetch says so: no separate look first)
    except InferenceError as exc:  # another model version, or damaged: made again
        logger.info("prepared avatar %s is not usable (%s): preparing it again", name, exc)
        return None


def _prepare(
    asset: Asset,
    engine: Engine,
    avatar: Path,
    scratch: Path,
    name: str,
    should_cancel: Callable[[], bool],
) -> AvatarPrep:
    started = time.monotonic()
    target = scratch / f"prep-{engine.name}.npz"
    prep = engine.prepare_avatar(
        avatar,
        out=target,
        batch_size=settings.RENDER_BATCH_SIZE,
        should_cancel=should_cancel,
    )
    storage.save_file(target, name, move=True)
    logger.info(
        "avatar %s prepared for %s: %d frames in %.1f s",
        asset.pk,
        engine.name,
        prep.frame_count,
        time.monotonic() - started,
    )
    return prep


def delete_prepared(asset: Asset) -> int:
    """Remove every prepared file of ``asset`` (when the asset goes)."""
    return storage.delete_matching(f"prep/{asset.organization_id}/{asset.pk}", "*.npz")
