"""Checking a downloaded bundle against its manifest.csv (path, bytes, SHA-256 per video)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1024 * 1024
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class BundleReport:
    checked: int = 0
    total_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _manifest_path(cell: str, names: set[str]) -> str:
    # The server prefixes cells that look like spreadsheet formulas with a quote.
    if cell not in names and cell[:1] == "'" and cell[1:2] in FORMULA_START:
        return cell[1:]
    return cell


def verify_bundle(path: Path) -> BundleReport:
    """Every manifest row is in the ZIP with its size and SHA-256, and nothing else is."""
    report = BundleReport()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(f"not a readable ZIP file ({exc})")
        return report
    with archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
        if "manifest.csv" not in names:
            report.problems.append("the bundle has no manifest.csv")
            return report
        text = archive.read("manifest.csv").decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        listed: set[str] = set()
        for row in rows:
            name = _manifest_path(row.get("path") or "", names)
            listed.add(name)
            if name not in names:
                report.problems.append(f"missing from the bundle: {name}")
                continue
            digest, size = hashlib.sha256(), 0
            try:
                with archive.open(name) as entry:
                    while chunk := entry.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
            except (zipfile.BadZipFile, OSError) as exc:
                report.problems.append(f"{name}: cannot be read ({exc})")
                continue
            if str(size) != (row.get("bytes") or "").strip():
                report.problems.append(
                    f"{name}: {size} bytes, the manifest says {row.get('bytes')}"
                )
            elif digest.hexdigest() != (row.get("sha256") or "").strip().lower():
                report.problems.append(f"{name}: SHA-256 does not match the manifest")
            else:
                report.checked += 1
                report.total_bytes += size
        for extra in sorted(names - listed - {"manifest.csv"}):
            report.problems.append(f"not in the manifest: {extra}")
    return report
