"""A batch's output options (resolution, quality preset, watermark), checked when the batch is
submitted and turned into ``inference.media.outputs.OutputOptions`` for each render's single
encode, with the job's burned-in subtitles."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from core.storage import media as storage
from jobs.models import Batch
from jobs.reasons import inference_error_text

if TYPE_CHECKING:
    from inference.media.outputs import OutputOptions

#: Largest watermark file accepted, bytes (a logo PNG is a few tens of KB).
WATERMARK_MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class OutputSettings:
    """Output options as submitted. ``watermark`` is the uploaded PNG (a file on disk) or
    None; the corner and opacity matter only with one."""

    resolution: str = Batch.Resolution.SOURCE
    quality: str = Batch.Quality.STANDARD
    watermark: Path | None = None
    watermark_corner: str = Batch.Corner.BOTTOM_RIGHT
    watermark_opacity: float = 0.8

    @property
    def is_default(self) -> bool:
        return self == OutputSettings()

    def audit_detail(self) -> dict:
        detail: dict = {"resolution": self.resolution, "quality": self.quality}
        if self.watermark is not None:
            detail["watermark"] = {
                "corner": self.watermark_corner,
                "opacity": self.watermark_opacity,
            }
        return detail


def output_settings_check(output: OutputSettings) -> OutputSettings:
    """The settings as stored, or ValidationError naming each wrong field (``resolution``,
    ``quality``, ``watermark``, ``watermark_corner``, ``watermark_opacity``) and why, in the
    active language. The watermark is opened with Pillow: a PNG, at most 4096 pixels per
    side and :data:`WATERMARK_MAX_BYTES`."""
    from inference.media.outputs import OutputOptionError, watermark_size

    errors: dict[str, str] = {}
    if output.resolution not in Batch.Resolution.values:
        errors["resolution"] = _(
            "Unknown resolution “%(resolution)s”: choose source, 1080p, 720p or 480p."
        ) % {"resolution": str(output.resolution)[:20]}
    if output.quality not in Batch.Quality.values:
        errors["quality"] = _("Unknown quality “%(quality)s”: choose draft, standard or high.") % {
            "quality": str(output.quality)[:20]
        }
    if output.watermark is not None:
        if output.watermark_corner not in Batch.Corner.values:
            errors["watermark_corner"] = _(
                "Unknown watermark corner “%(corner)s”: choose top-left, top-right, "
                "bottom-left or bottom-right."
            ) % {"corner": str(output.watermark_corner)[:20]}
        try:
            opacity = float(output.watermark_opacity)
        except (TypeError, ValueError):
            opacity = math.nan
        if not 0.0 <= opacity <= 1.0:  # also refuses NaN
            errors["watermark_opacity"] = _("The watermark opacity must be between 0 and 1.")
        size = Path(output.watermark).stat().st_size
        if size > WATERMARK_MAX_BYTES:
            errors["watermark"] = _(
                "The watermark file is %(size)s MB; it may be at most %(limit)s MB."
            ) % {
                "size": f"{size / 1e6:.1f}",
                "limit": f"{WATERMARK_MAX_BYTES / 1e6:.0f}",
            }
        else:
            try:
                watermark_size(output.watermark)
            except OutputOptionError as exc:
                errors["watermark"] = inference_error_text(exc)
    if errors:
        raise ValidationError(errors)
    return output


def store_watermark(path: Path, organization_id: int) -> str:
    """Store a checked watermark PNG once per content; returns its stored name."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    name = f"watermarks/{organization_id}/{digest}.png"
    if not storage.exists(name):
        storage.save_file(Path(path), name, sha256=digest)
    return name


def output_options(batch: Batch, *, scratch: Path, subtitles: Path | None = None) -> OutputOptions:
    """The batch's options for one render in ``scratch`` (the watermark fetched there when
    media live in a bucket), with ``subtitles`` (an SRT file) burned in when given."""
    from inference.media.outputs import BurnedSubtitles, OutputOptions, Watermark

    watermark = None
    if batch.watermark:
        watermark = Watermark(
            path=storage.fetch(batch.watermark.name, scratch),
            corner=batch.watermark_corner,
            opacity=float(batch.watermark_opacity),
        )
    return OutputOptions(
        resolution=batch.resolution,
        quality=batch.quality,
        watermark=watermark,
        subtitles=BurnedSubtitles(path=subtitles) if subtitles is not None else None,
    )
