"""CSV for people: cells spreadsheet programs will not run as formulas, written as a stream."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator


def csv_safe(value) -> str:
    """Prefix a cell that starts like a formula (= + - @ tab CR) with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    """A file-like object whose write() hands back the line, for streaming csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    """Each row as one CSV line, every cell made safe: for a streamed response that never
    holds the whole file in memory."""
    writer = csv.writer(_Echo())
    return (writer.writerow([csv_safe(v) for v in row]) for row in rows)
