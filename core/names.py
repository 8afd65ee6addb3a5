"""Names people gave things, made safe to show and to use as file names."""

from __future__ import annotations

import unicodedata


def without_invisible(text: str) -> str:
    """``text`` without control, format (bidi overrides such as U+202E, zero-width
    characters), private-use, surrogate or unassigned characters: what is left is what a
    person sees, so a name cannot pretend to end in something else."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
