"""Batch sheets: one row per video, read from a CSV or an Excel workbook (.xlsx).

A row names an avatar of the library and either an audio file of the library or a script (the
text a voice speaks), with an optional voice, output name, tags and subtitles switch. Headers
are English or Chinese (``avatar`` / ``形象视频`` …), in any order and case. A CSV may be
UTF-8 (with or without the byte-order mark Excel writes) or GB18030, which Excel on Chinese
Windows uses when it saves "CSV"; commas, semicolons or tabs.

This module only reads: ``read_sheet`` turns the file into ``SheetRow``s (or refuses the file
as a whole), and ``jobs.services.sheets`` checks each row against the organization's library
and voices and submits the batch when every row is good.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

MAX_ROWS = 500
MAX_SHEET_BYTES = 5 * 1024 * 1024
MAX_CELL = 5000

# Each column: its key and the headers a person may write for it.
COLUMNS: dict[str, tuple[str, ...]] = {
    "avatar": ("avatar", "avatar video", "presenter", "形象视频", "数字人", "形象"),
    "audio": ("audio", "audio file", "音频", "音频文件"),
    "script": ("script", "text", "文案", "脚本", "文本"),
    "voice": ("voice", "音色", "声音"),
    "output_name": ("output name", "output", "name", "file name", "输出名称", "文件名", "名称"),
    "tags": ("tags", "tag", "标签"),
    "subtitles": ("subtitles", "subtitle", "captions", "字幕"),
}
# The template sheet's headers and what each column takes (shown on the import page too).
TEMPLATE_HEADERS = ("avatar", "audio", "script", "voice", "output name", "tags", "subtitles")
COLUMN_HELP = {
    "avatar": gettext_lazy("the name of an avatar video in the library (required)"),
    "audio": gettext_lazy("the name of an audio file in the library, or leave empty"),
    "script": gettext_lazy("the text to speak, when there is no audio file"),
    "voice": gettext_lazy("the voice that speaks the script (empty: the default voice)"),
    "output_name": gettext_lazy("the video's file name in the bundle (optional)"),
    "tags": gettext_lazy("tags for the batch, separated by commas (optional)"),
    "subtitles": gettext_lazy("yes or no: burn the subtitles into the video"),
}
YES = frozenset({"yes", "y", "true", "1", "on", "是", "开", "有", "需要", "√", "✓"})
NO = frozenset({"", "no", "n", "false", "0", "off", "否", "关", "无", "不需要", "×"})

_HEADER_KEY = {
    re.sub(r"[\s_\-]+", " ", alias.strip().lower()): key
    for key, aliases in COLUMNS.items()
    for alias in aliases
}


class SheetError(ValueError):
    """The file as a whole cannot be read as a batch sheet; the message says why."""


@dataclass
class SheetRow:
    number: int  # the row's number in the spreadsheet (the header is row 1)
    avatar: str = ""
    audio: str = ""
    script: str = ""
    voice: str = ""
    output_name: str = ""
    tags: str = ""
    subtitles: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def wants_subtitles(self) -> bool:
        return self.subtitles.strip().lower() in YES


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel's 1.0 for a typed 1
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    return text.lstrip("\ufeff")


def _header_keys(headers: list[str]) -> list[str | None]:
    keys: list[str | None] = []
    unknown, seen = [], set()
    for raw in headers:
        name = re.sub(r"[\s_\-]+", " ", _cell(raw).lower())
        if not name:
            keys.append(None)
            continue
        key = _HEADER_KEY.get(name)
        if key is None:
            unknown.append(_cell(raw))
        elif key in seen:
            raise SheetError(_("The column “%(name)s” appears twice.") % {"name": _cell(raw)})
        seen.add(key)
        keys.append(key)
    if unknown:
        raise SheetError(
            ngettext(
                "Unknown column %(names)s. The columns are: %(known)s.",
                "Unknown columns %(names)s. The columns are: %(known)s.",
                len(unknown),
            )
            % {
                "names": ", ".join(f"“{u}”" for u in unknown),
                "known": ", ".join(TEMPLATE_HEADERS),
            }
        )
    if "avatar" not in seen:
        raise SheetError(_("The sheet needs an “avatar” column (形象视频)."))
    if "audio" not in seen and "script" not in seen:
        raise SheetError(_("The sheet needs an “audio” or a “script” column (音频 / 文案)."))
    return keys


def _rows_of(table: list[list[object]]) -> list[SheetRow]:
    while table and not any(_cell(c) for c in table[0]):
        table = table[1:]
    if not table:
        raise SheetError(_("The sheet is empty."))
    keys = _header_keys([_cell(c) for c in table[0]])
    rows: list[SheetRow] = []
    for number, values in enumerate(table[1:], start=2):
        cells = [_cell(c) for c in values]
        if not any(cells):
            continue  # blank lines between rows
        if len(rows) >= MAX_ROWS:
            raise SheetError(
                _("The sheet has more than %(max)d rows; split it into several sheets.")
                % {"max": MAX_ROWS}
            )
        row = SheetRow(number=number)
        for key, text in zip(keys, cells, strict=False):
            if key is None:
                if text:
                    row.errors.append(_("A value stands in a column without a header."))
                continue
            if len(text) > MAX_CELL:
                row.errors.append(
                    _("The %(column)s is longer than %(max)d characters.")
                    % {"column": key.replace("_", " "), "max": MAX_CELL}
                )
                text = text[:MAX_CELL]
            setattr(row, key, text)
        rows.append(row)
    if not rows:
        raise SheetError(_("The sheet has a header row but no rows below it."))
    return rows


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError(_("The CSV file is neither UTF-8 nor GB18030 text. Save it as “CSV UTF-8”."))


def _read_csv(data: bytes) -> list[list[object]]:
    text = _decode(data)
    if "\x00" in text:
        raise SheetError(_("This is not a CSV file (it holds binary data)."))
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""), dialect)]
    except csv.Error as exc:
        raise SheetError(_("The CSV file cannot be read: %(why)s.") % {"why": exc}) from exc


def _read_xlsx(data: bytes) -> list[list[object]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise SheetError(
            _("The file is not an Excel workbook (.xlsx) that can be opened.")
        ) from exc
    try:
        sheet = workbook.worksheets[0]
        table = []
        for values in sheet.iter_rows(values_only=True):
            table.append(list(values))
            if len(table) > MAX_ROWS + 50:
                break
        return table
    finally:
        workbook.close()


def read_sheet(filename: str, data: bytes) -> list[SheetRow]:
    """The rows of a batch sheet (CSV or .xlsx, told apart by content, not name)."""
    if not data:
        raise SheetError(_("The file is empty."))
    if len(data) > MAX_SHEET_BYTES:
        raise SheetError(
            _("The sheet is larger than %(mb)d MB.") % {"mb": MAX_SHEET_BYTES // 1024 // 1024}
        )
    if data[:4] == b"PK\x03\x04":
        table = _read_xlsx(data)
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SheetError(_("Old Excel files (.xls) are not read; save the sheet as .xlsx or CSV."))
    else:
        table = _read_csv(data)
    return _rows_of(table)


def template_xlsx() -> bytes:
    """The sheet to start from: the headers, what each column takes, two example rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "batch"
    sheet.append(list(TEMPLATE_HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.append(["presenter.mp4", "", "欢迎来到北京经销商。", "", "经销商_北京", "北京", "yes"])
    sheet.append(["presenter.mp4", "", "Welcome to our Shanghai dealers.", "", "dealer_shanghai",
                  "shanghai", "no"])  # fmt: skip
    for column, width in zip("ABCDEFG", (22, 22, 48, 22, 22, 16, 10), strict=True):
        sheet.column_dimensions[column].width = width
    notes = workbook.create_sheet("help")
    for key, header in zip(COLUMNS, TEMPLATE_HEADERS, strict=True):
        notes.append([header, str(COLUMN_HELP[key])])
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["B"].width = 70
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
