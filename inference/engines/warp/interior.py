"""What the opened mouth shows: a shaded cavity, the avatar's own teeth, a hint of the tongue.

The *interior* (between the displaced inner lip contours, :class:`~.field.Interior`) is painted
with a cavity, except where the warped source shows teeth: those pixels stay, moved with the lip
they belong to. The *tear* (the new opening) is always cavity: the source has nothing there but
a stretched line. Over the cavity, above the dropped lower lip, the lower row of teeth is drawn
where the field's mirrored map reads teeth (:attr:`~.field.Interior.lower_teeth`), a little in
shadow (``LOWER_SHADE``).

Teeth are told from lip by brightness and colour together (:func:`teeth_weight`): brighter than
the frame's lower lip and less red (teeth are near grey; a lip, even where it shines, redder).

The cavity is shaded relative to the frame's own lower-lip brightness (``lip_y``), so it suits
the picture's exposure: darkest at the top of the interior, under the upper teeth and the palate
(the back of the mouth, ``TOP`` of the lip's brightness above black), lighter towards its floor
(``FLOOR``) and darker towards the corners (``SIDE``: the cheeks' shadow). In the lower part of a
mouth open wide enough the tongue shows: lighter (``TONGUE``) and warmer (more red, less blue).
Everything is on the yuv420p planes (limited range: black is Y 16, grey chroma 128).
"""

from __future__ import annotations

import torch

from inference.engines.warp.field import Interior, ramp, smooth

#: Cavity brightness above black, as a fraction of the lip's: at the top of the interior (the
#: back of the mouth) and at its floor; towards the corners it falls to SIDE of that.
TOP = 0.04
FLOOR = 0.22
SIDE = 0.5
#: The tongue's brightness (same scale), how much of it shows, and from where (down the
#: interior, 0 top, 1 bottom).
TONGUE = 0.40
TONGUE_MIX = 0.85
TONGUE_TOP = 0.45
#: The tongue shows once the interior is this tall (mouth half widths), fully at twice that.
TONGUE_OPEN = 0.10
#: Chroma (U, V) of the cavity and of the tongue, as offsets from grey.
CAVITY_UV = (-4.0, 8.0)
TONGUE_UV = (-8.0, 20.0)
#: Interior pixels of the source darker than DARK[0] of the lip's brightness (above black) are
#: replaced by the cavity, brighter than DARK[1] kept (teeth, lip), blended between.
DARK = (0.45, 0.7)
#: Teeth are from TEETH[0] of the lip's brightness (fully at TEETH[1]) and their V (red) is
#: under the lip's by RED[0] (fully by RED[1]).
TEETH = (1.05, 1.2)
RED = (4.0, 12.0)
#: The lower row's brightness above black, as a fraction of the teeth it is read from, and
#: how far its colour goes towards the cavity's.
LOWER_SHADE = 0.85
LOWER_WARMTH = 0.3


def _above_black(lip_y: torch.Tensor) -> torch.Tensor:
    return (lip_y.view(-1, 1, 1) - 16).clamp(min=20)


def shading(inner: Interior, half_width: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cavity, tongue)`` over the interior's grid: the cavity's brightness above black as a
    fraction of the lip's, and how much tongue shows (0..1)."""
    across2 = inner.across * inner.across
    cavity = (TOP + (FLOOR - TOP) * smooth(inner.depth)) * (1 - (1 - SIDE) * across2.clamp(max=1))
    grow = ramp(inner.height / half_width.view(-1, 1, 1), TONGUE_OPEN, 2 * TONGUE_OPEN)
    tongue = (
        smooth(ramp(inner.depth, TONGUE_TOP, 0.95))
        * (1 - across2 / 0.64).clamp(0, 1)
        * grow
        * TONGUE_MIX
    )
    return cavity, tongue


def paleness(v: torch.Tensor, lip: torch.Tensor) -> torch.Tensor:
    """How much less red than the lip (``lip``: Y, U, V ``(m, 3)``) each pixel's V ``(m, h, w)``
    is, 0..1: teeth are near grey, a lip (even its highlights) is red."""
    return smooth(ramp(lip[:, 2].view(-1, 1, 1) - v, RED[0], RED[1]))


def teeth_weight(luma: torch.Tensor, pale: torch.Tensor, lip_y: torch.Tensor) -> torch.Tensor:
    """How much each pixel ``(m, h, w)`` looks like teeth rather than lip or mouth: brighter
    than the lip (``lip_y`` ``(m,)``) and pale (:func:`paleness`)."""
    above = _above_black(lip_y)
    return smooth(ramp(luma, 16 + TEETH[0] * above, 16 + TEETH[1] * above)) * pale


def kept_weight(
    luma: torch.Tensor,
    pale: torch.Tensor,
    below: torch.Tensor,
    near_split: torch.Tensor,
    central: torch.Tensor,
    lip_y: torch.Tensor,
) -> torch.Tensor:
    """How much of each warped pixel of the interior is kept (0..1), ``(m, h, w)``.

    Teeth and lip are kept, the dark of the source's own open mouth is not (the cavity replaces
    it, so an open mouth is shaded as one): under ``DARK`` of the lip's brightness above black.
    Where ``near_split`` says so (:attr:`~.field.Interior.near_split`), nothing red either; under
    the tear (``below``: :attr:`~.field.Interior.below`) only lip (red) and, away from the
    corners (``central``), teeth (:func:`teeth_weight`): not the pale, dimmer pixels between.
    """
    above = _above_black(lip_y)
    loose = smooth(ramp(luma, 16 + DARK[0] * above, 16 + DARK[1] * above))
    upper = loose * (1 - near_split * (1 - pale))
    # Under the tear only what is clearly lip: the soft, half-pale edge of the upper teeth
    # would fall with the jaw as a pale streak.
    red = (1 - pale) * (1 - pale)
    lower = torch.maximum(loose * red, teeth_weight(luma, pale, lip_y) * central)
    return upper + (lower - upper) * below


def coverage(tear: torch.Tensor, interior: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Where the cavity is painted ``(m, h, w)``: the tear, and the interior but what is kept
    of it (:func:`kept_weight`)."""
    return torch.maximum(tear, interior * (1 - kept))


def interior_luma(cavity: torch.Tensor, tongue: torch.Tensor, lip_y: torch.Tensor) -> torch.Tensor:
    """Y of the cavity ``(m, h, w)`` float, from :func:`shading`'s maps."""
    return 16 + _above_black(lip_y) * (cavity + (TONGUE - cavity) * tongue)


def interior_chroma(tongue: torch.Tensor) -> torch.Tensor:
    """U and V of the cavity ``(m, 2, h, w)`` float, from the tongue weight."""
    u = 128 + CAVITY_UV[0] + (TONGUE_UV[0] - CAVITY_UV[0]) * tongue
    v = 128 + CAVITY_UV[1] + (TONGUE_UV[1] - CAVITY_UV[1]) * tongue
    return torch.stack([u, v], dim=1)


def lower_teeth_luma(teeth: torch.Tensor) -> torch.Tensor:
    """Y of the lower row from the source teeth read for it, ``(m, 1, h, w)``: in shadow."""
    return 16 + (teeth - 16) * LOWER_SHADE


def lower_teeth_chroma(teeth: torch.Tensor) -> torch.Tensor:
    """U and V of the lower row from the source teeth read for it, ``(m, 2, h, w)``: their
    shadow takes on some of the mouth's warmth."""
    cavity = torch.tensor([128 + CAVITY_UV[0], 128 + CAVITY_UV[1]], device=teeth.device)
    return teeth + (cavity.view(1, 2, 1, 1) - teeth) * LOWER_WARMTH


def composite(warped: torch.Tensor, interior: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``warped`` ``(m, c, h, w)`` with ``interior`` laid over it where ``alpha`` ``(m, h, w)``
    says."""
    return warped + (interior - warped) * alpha.unsqueeze(1)
