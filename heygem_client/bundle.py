"""Checking a downloaded bundle against its manifest.csv (path, bytes, SHA-256 per video)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from heygem_client.i18n import _

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
        report.problems.append(_("not a readable ZIP file (%(error)s)") % {"error": exc})
        return report
    with archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
        if "manifest.csv" not in names:
            report.problems.append(_("the bundle has no manifest.csv"))
            return report
        text = archive.read("manifest.csv").decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        listed: set[str] = set()
        for row in rows:
            name = _manifest_path(row.get("path") or "", names)
            listed.add(name)
            if name not in names:
                report.problems.append(_("missing from the bundle: %(name)s") % {"name": name})
                continue
            digest, size = hashlib.sha256(), 0
            try:
                with archive.open(name) as entry:
                    while chunk := entry.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
            except (zipfile.BadZipFile, OSError) as exc:
                report.problems.append(
                    _("%(name)s: cannot be read (%(error)s)") % {"name": name, "error": exc}
                )
                continue
            if str(size) != (row.get("bytes") or "").strip():
                report.problems.append(
                    _("%(name)s: %(size)s bytes, the manifest says %(listed)s")
                    % {"name": name, "size": size, "listed": row.get("bytes")}
                )
            elif digest.hexdigest() != (row.get("sha256") or "").strip().lower():
                report.problems.append(
                    _("%(name)s: SHA-256 does not match the manifest") % {"name": name}
                )
            else:
                report.checked += 1
                report.total_bytes += size
        for extra in sorted(names - listed - {"manifest.csv"}):
            report.problems.append(_("not in the manifest: %(name)s") % {"name": extra})
    return report
