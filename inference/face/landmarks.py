"""Named points of MediaPipe's canonical 468-point face mesh, and measures taken from them.

"Right" and "left" are the subject's: on a frontal face the subject's right eye is on the
image's left. Index lists follow the contours in order (from MediaPipe's FACEMESH_* sets), so
they can be drawn as polylines or filled as polygons.
"""

from __future__ import annotations

import math

import numpy as np

#: Mouth corners: the subject's right (image left) and left (image right).
MOUTH_RIGHT = 61
MOUTH_LEFT = 291
#: Middle of the inner upper lip and of the inner lower lip: their distance is the lip gap.
INNER_UPPER_LIP_MID = 13
INNER_LOWER_LIP_MID = 14
#: Middle of the outer upper lip (philtrum's foot) and of the outer lower lip.
OUTER_UPPER_LIP_MID = 0
OUTER_LOWER_LIP_MID = 17

#: Outer lip contour, upper half then lower half, each from corner 61 to corner 291.
OUTER_LIP_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LIP_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
#: The closed outer contour (clockwise on screen from the right corner).
OUTER_LIP = OUTER_LIP_UPPER + OUTER_LIP_LOWER[-2:0:-1]
#: Inner lip contour halves, from inner corner 78 to inner corner 308.
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
INNER_LIP = INNER_LIP_UPPER + INNER_LIP_LOWER[-2:0:-1]

NOSE_TIP = 1
#: Below the tip, where the nose meets the upper lip (subnasale).
NOSE_BASE = 2
#: Between the eyes, top of the nose bridge.
NOSE_BRIDGE = 168
#: Nose wings (alae), subject's right and left.
NOSE_RIGHT_WING, NOSE_LEFT_WING = 129, 358
FOREHEAD_TOP = 10
CHIN = 152

#: Jaw line from the right cheek (face edge at eye level) down round the chin to the left.
JAW = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288,
       361, 323, 454)  # fmt: skip
#: The whole face outline, clockwise from the top of the forehead.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109)  # fmt: skip
#: Face edges at eye level (cheek points on the outline), subject's right and left.
CHEEK_RIGHT, CHEEK_LEFT = 234, 454

#: Eye contours (closed), and their outer / inner corners.
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362


def _xy(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64)[:, :2]


def mouth_center(points: np.ndarray) -> tuple[float, float]:
    """Centre ``(x, y)`` of the outer lip contour."""
    cx, cy = _xy(points)[list(OUTER_LIP)].mean(axis=0)
    return float(cx), float(cy)


def mouth_width(points: np.ndarray) -> float:
    """Distance between the mouth corners (61, 291)."""
    xy = _xy(points)
    return float(np.hypot(*(xy[MOUTH_LEFT] - xy[MOUTH_RIGHT])))


def face_height(points: np.ndarray) -> float:
    """Distance from the top of the forehead (10) to the chin (152)."""
    xy = _xy(points)
    return float(np.hypot(*(xy[CHIN] - xy[FOREHEAD_TOP])))


def lip_gap(points: np.ndarray, *, per: str = "mouth_width") -> float:
    """How far the lips are apart: the distance between the inner lips' middles (13, 14),
    divided by the mouth width (``per="mouth_width"``) or the face height (``"face_height"``),
    so that it does not depend on how large the face is in the picture."""
    xy = _xy(points)
    gap = float(np.hypot(*(xy[INNER_LOWER_LIP_MID] - xy[INNER_UPPER_LIP_MID])))
    if per == "mouth_width":
        scale = mouth_width(points)
    elif per == "face_height":
        scale = face_height(points)
    else:
        raise ValueError("per must be 'mouth_width' or 'face_height'")
    return gap / max(scale, 1e-6)


def eye_angle(points: np.ndarray) -> float:
    """Roll: angle (radians, clockwise on screen) of the line between the outer eye corners."""
    xy = _xy(points)
    dx, dy = xy[LEFT_EYE_OUTER] - xy[RIGHT_EYE_OUTER]
    return math.atan2(dy, dx)


def yaw_degrees(points: np.ndarray) -> float:
    """Rough head yaw in degrees from the face's left-right asymmetry (0: facing the camera;
    the sign says towards which side of the image the nose points, positive = image right).

    Measured along the eye line, the nose tip sits in the middle of the two cheek points on a
    frontal face and moves towards one of them as the head turns. Treating the head as a
    cylinder through the cheek points, with the nose tip a little in front of it, the offset
    over the half-width is ``k * tan(yaw)`` in a model of the mean face (``k`` ~ 1.2 since the
    cheek points sit behind the nose); it reads within ~10 degrees up to ~60 degrees, enough to
    tell a face that looks at the camera from one turned away.
    """
    xy = _xy(points)
    roll = eye_angle(points)
    axis = np.array([math.cos(roll), math.sin(roll)])
    right, left, nose = xy[CHEEK_RIGHT] @ axis, xy[CHEEK_LEFT] @ axis, xy[NOSE_TIP] @ axis
    half = (left - right) / 2
    if half <= 1e-6:
        return 90.0  # the cheeks crossed over: seen from the side
    offset = (nose - (left + right) / 2) / half
    return math.degrees(math.atan(offset / _NOSE_DEPTH_RATIO))


#: The ``k`` of :func:`yaw_degrees` (see there).
_NOSE_DEPTH_RATIO = 1.4
