"""What the opened mouth shows: a shaded cavity, the avatar's own teeth, a hint of the tongue.

The *interior* (between the displaced inner lip contours, :class:`~.field.Field`) is painted
with a cavity, except where the warped source shows teeth: those pixels (brighter than the lips:
:func:`teeth_weight`) stay, moved with the lip they belong to. The *tear* (the new opening) is
always cavity: the source has nothing there but a stretched line.

Shading is relative to the frame's own lower-lip brightness (``lip_y``), so the interior suits
the picture's exposure: ``RIM`` of the lip's brightness (above black) at the interior's edges
and ``CORE`` in its middle, the back of the mouth. In the lower part of a mouth open wide
enough the tongue shows: lighter (``TONGUE``) and warmer (more red, less blue). Everything is
on the yuv420p planes (limited range: black is Y 16, grey chroma 128).
"""

from __future__ import annotations

import torch

from inference.engines.warp.field import Field, ramp, smooth

#: Brightness above black, as a fraction of the lip's: at the interior's edges and its core.
RIM = 0.30
CORE = 0.08
#: The tongue's brightness (same scale), how much of it shows, and where (down the interior).
TONGUE = 0.55
TONGUE_MIX = 0.8
TONGUE_TOP = 0.5
#: The tongue shows once the interior is this tall (mouth half widths), fully at twice that.
TONGUE_OPEN = 0.10
#: Chroma (U, V) of the cavity and of the tongue, as offsets from grey.
CAVITY_UV = (-5.0, 7.0)
TONGUE_UV = (-9.0, 22.0)
#: Interior pixels of the source darker than DARK[0] of the lip's brightness (above black) are
#: replaced by the cavity, brighter than DARK[1] kept (teeth, lip), blended between.
DARK = (0.45, 0.7)
#: Where only teeth are kept, pixels are from TEETH[0] of the lip's brightness (fully at
#: TEETH[1]).
TEETH = (1.05, 1.2)


def shading(field: Field, half_width: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(core, tongue)`` weights in [0, 1] over the field's grid: how deep into the mouth a
    pixel looks, and how much tongue it shows."""
    down = 2 * field.depth - 1
    core = (1 - field.across * field.across - down * down).clamp(0, 1) ** 0.8
    grow = ramp(field.height / half_width.view(-1, 1, 1), TONGUE_OPEN, 2 * TONGUE_OPEN)
    tongue = (
        smooth(ramp(field.depth, TONGUE_TOP, 0.95))
        * (1 - (field.across / 0.8) ** 2).clamp(0, 1)
        * grow
        * TONGUE_MIX
    )
    return core, tongue


def kept_weight(field: Field, luma: torch.Tensor, lip_y: torch.Tensor) -> torch.Tensor:
    """How much of each warped pixel of the interior is kept (0..1), ``(m, h, w)``.

    Teeth and lip are kept, the dark of the source's own open mouth is not (the cavity replaces
    it, so an open mouth is shaded as one): under ``DARK`` of the lip's brightness above black.
    Where ``field.strict`` says so, only what is brighter than the lip is kept (teeth).
    """
    above = (lip_y.view(-1, 1, 1) - 16).clamp(min=20)
    loose = smooth(ramp(luma, 16 + DARK[0] * above, 16 + DARK[1] * above))
    strict = smooth(ramp(luma, 16 + TEETH[0] * above, 16 + TEETH[1] * above))
    return loose + (strict - loose) * field.strict


def coverage(field: Field, kept: torch.Tensor) -> torch.Tensor:
    """Where the cavity is painted ``(m, h, w)``: the tear, and the interior but what is kept
    of it (:func:`kept_weight`)."""
    return torch.maximum(field.tear, field.interior * (1 - kept))


def interior_luma(core: torch.Tensor, tongue: torch.Tensor, lip_y: torch.Tensor) -> torch.Tensor:
    """Y of the cavity ``(m, h, w)`` float, from :func:`shading`'s weights."""
    above_black = (lip_y.view(-1, 1, 1) - 16).clamp(min=20)
    cavity = RIM + (CORE - RIM) * core
    return 16 + above_black * (cavity + (TONGUE - cavity) * tongue)


def interior_chroma(tongue: torch.Tensor) -> torch.Tensor:
    """U and V of the cavity ``(m, 2, h, w)`` float, from the tongue weight."""
    u = 128 + CAVITY_UV[0] + (TONGUE_UV[0] - CAVITY_UV[0]) * tongue
    v = 128 + CAVITY_UV[1] + (TONGUE_UV[1] - CAVITY_UV[1]) * tongue
    return torch.stack([u, v], dim=1)


def composite(warped: torch.Tensor, interior: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``warped`` ``(m, c, h, w)`` with ``interior`` laid over it where ``alpha`` ``(m, h, w)``
    says."""
    return warped + (interior - warped) * alpha.unsqueeze(1)
