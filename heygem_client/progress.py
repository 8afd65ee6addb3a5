"""A text progress bar: redrawn in place on a terminal, one line per 10 % otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class ProgressBar:
    def __init__(self, label: str = "", stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_step = -1
        self._last_detail: str | None = None
        self._last_text = ""

    @staticmethod
    def bar(fraction: float) -> str:
        fraction = min(1.0, max(0.0, fraction))
        filled = round(WIDTH * fraction)
        return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {int(fraction * 100):3d}%"

    def update(self, fraction: float, detail: str = "") -> None:
        text = f"{self.label} {self.bar(fraction)} {detail}".strip()
        if self.tty:
            if text != self._last_text:
                self.stream.write("\r\033[K" + text)
                self.stream.flush()
        else:  # a log file: a line per 10 %, and whenever the detail changes
            step = int(min(1.0, max(0.0, fraction)) * 10)
            if step != self._last_step or detail != self._last_detail:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._last_step, self._last_detail = step, detail
        self._last_text = text

    def done(self, detail: str = "") -> None:
        self.update(1.0, detail)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
