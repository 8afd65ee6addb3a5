"""Cutting a script into sentences, and a sentence into Chinese and Latin-script runs.

Sentences end at the Chinese full stop, exclamation mark, question mark and semicolon
(U+3002, U+FF01, U+FF1F, U+FF1B) and at English ``. ! ?`` (with closing quotes or brackets after
them), and at line breaks: a script typed in a text box or a sheet cell puts a break where it
wants a pause. A full stop does not end a sentence inside a number (``3.5``), a web address
(``heygem.ai``), after a title or common abbreviation (``Dr.``, ``e.g.``, ``Jan. 5``), after an
initial (``J. K. Rowling``), or before a word in lower case. A sentence too long for a subtitle
is cut further at its clause marks (Chinese or English commas, colons ...), else between words."""

from __future__ import annotations

import re
import unicodedata

from inference.subtitles import display_width

#: A sentence wider than this (columns: a Chinese character is two) is cut at clause marks.
MAX_SENTENCE_WIDTH = 120

# Closing quotes and brackets that stay with the sentence mark before them.
_CLOSERS = "\"'”’」』）)】》]"
# Always abbreviations: never the end of a sentence (lower case, without the final dot). The
# word lists read better as text than as a column of quoted strings, hence the noqa.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt rev gen col lt sgt capt gov sen rep hon fr vs e.g i.e cf "  # noqa: SIM905
    "approx dept est ca al ed eds tel ext ave blvd rd".split()
)
# Abbreviations that end a sentence only when a capitalised word follows ("No. 5" does not,
# "... said no. Then" does).
_MAYBE_ABBREVIATIONS = frozenset(
    "a.m p.m etc inc ltd co corp llc plc u.s u.k u.n e.u no nos vol vols fig figs p pp "  # noqa: SIM905
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)
_CJK_END = "。！？；"
_ASCII_END = "!?"
_BOUNDARY = re.compile(
    rf"(?P<mark>[{_CJK_END}{_ASCII_END}]+|\.+|…+)(?P<close>[{re.escape(_CLOSERS)}]*)"
)
_CLAUSE = re.compile(r"[，、：,:;—]+|……")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3007\U00020000-\U0003134f]")


def is_han(ch: str) -> bool:
    """Whether ``ch`` is a Chinese character (CJK ideograph)."""
    return bool(_HAN.match(ch))


def speakable(text: str) -> bool:
    """Whether ``text`` has anything to say (a letter, a digit or a Chinese character)."""
    return any(ch.isalnum() for ch in text)


def _word_before(text: str, end: int) -> str:
    m = re.search(r"([A-Za-z][A-Za-z.]*)$", text[:end])
    return m.group(1) if m else ""


def _ends_sentence(text: str, m: re.Match[str]) -> bool:
    mark = m.group("mark")
    after = text[m.end() :]
    nxt = after.lstrip()[:1]
    if mark[0] in _CJK_END or mark[0] in _ASCII_END:
        return True
    # A full stop or an ellipsis: followed by a space, the end, or a Chinese character.
    if after and not after[0].isspace() and not is_han(after[0]):
        return False  # 3.5, heygem.ai, a.m.
    if not nxt:
        return True
    if nxt.islower():
        return False  # "approx. five", "... and then"
    if mark.startswith("…") or len(mark) > 1:
        return True  # an ellipsis before a capital or a Chinese character
    word = _word_before(text, m.start())
    low = word.lower().rstrip(".")
    if low in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isupper():
        return False  # an initial: J. K. Rowling
    if low in _MAYBE_ABBREVIATIONS:
        return nxt.isupper() or is_han(nxt)
    return True


def _split_line(line: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(line):
        if _ends_sentence(line, m):
            parts.append(line[start : m.end()])
            start = m.end()
    parts.append(line[start:])
    return [p.strip() for p in parts if p.strip()]


def _cut_long(sentence: str, limit: int) -> list[str]:
    """Cut a sentence wider than ``limit`` at the clause mark nearest its middle (else at the
    space nearest it, else in the middle), recursively."""
    if display_width(sentence) <= limit:
        return [sentence]
    middle = len(sentence) / 2
    cuts = [m.end() for m in _CLAUSE.finditer(sentence) if 0 < m.end() < len(sentence)]
    if not cuts:
        cuts = [m.start() for m in re.finditer(r"\s+", sentence) if m.start() > 0]
    cut = min(cuts, key=lambda c: abs(c - middle)) if cuts else int(middle)
    head, tail = sentence[:cut].strip(), sentence[cut:].strip()
    if not head or not tail:
        return [sentence]
    return _cut_long(head, limit) + _cut_long(tail, limit)


def split_sentences(text: str, *, max_width: int = MAX_SENTENCE_WIDTH) -> list[str]:
    """The sentences of ``text``, in order, stripped, each with something to say.

    A piece with nothing to say (a stray ``”`` or ``……``) joins the sentence before it.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        for piece in _split_line(line):
            if not speakable(piece):
                if sentences:
                    sentences[-1] += piece
                continue
            sentences.extend(_cut_long(piece, max_width))
    return sentences


def script_runs(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into runs of Chinese (``True``) and of everything else (``False``).

    Only letters decide: digits, spaces and punctuation belong to the run of the letter before
    them (``价格是3.5元`` is one Chinese run, read in Chinese; ``iPhone 15很好`` reads "15" in
    English), or to the next run at the start of the text.
    """
    runs: list[tuple[bool, str]] = []
    pending = ""
    for ch in text:
        if is_han(ch):
            kind: bool | None = True
        elif unicodedata.category(ch).startswith("L"):
            kind = False
        else:
            kind = None
        if kind is None:
            if runs:
                runs[-1] = (runs[-1][0], runs[-1][1] + ch)
            else:
                pending += ch
            continue
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + ch)
        else:
            runs.append((kind, pending + ch))
            pending = ""
    if pending:
        runs.append((False, pending))
    return runs
