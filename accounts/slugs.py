"""An organization's address (its slug) made from its name, for people who leave it empty.

Chinese is written in pinyin without tones, word by word: ``华东经销商`` becomes
``huadong-jingxiaoshang``. pypinyin's segmenter finds the words it knows (华东); the characters
it leaves single are read as one word together (经 销 商 → jingxiaoshang), so a name does not
fall apart into syllables.
Latin letters keep their words, accents dropped (``Café Noir`` → ``cafe-noir``); anything else
(emoji, kana) is left out. A name with nothing usable becomes ``org``.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.text import slugify
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import RE_HANS
from pypinyin.seg.mmseg import seg as mmseg

from accounts.models import RESERVED_SLUGS, Organization

FALLBACK = "org"
# A made address stays this short, so a "-<n>" suffix always fits in the 50 of the field.
BASE_MAX = 40
_HANS_RUN = re.compile(f"({RE_HANS.pattern.strip('^$')})")


def _words_of_hans(run: str) -> list[str]:
    """The pinyin words of a run of Chinese characters: segmented words as they are, runs of
    single characters between them joined into one word."""
    words: list[str] = []
    singles = ""
    for token in mmseg.cut(run):
        if len(token) == 1:
            singles += token
            continue
        if singles:
            words.append(singles)
            singles = ""
        words.append(token)
    if singles:
        words.append(singles)
    return ["".join(lazy_pinyin(word, style=Style.NORMAL)) for word in words]


def slug_from_name(name: str) -> str:
    """The address ``name`` reads as: lower-case ASCII letters, digits and inner hyphens, at
    most ``BASE_MAX`` characters, cut between words where it can be; ``org`` when nothing is
    left. Not checked against existing or reserved addresses (``free_slug`` does that)."""
    text = unicodedata.normalize("NFKC", name or "")  # full-width letters and digits → ASCII
    pieces = []
    for part in _HANS_RUN.split(text):
        if part and _HANS_RUN.fullmatch(part):
            pieces.extend(_words_of_hans(part))
        else:
            pieces.append(part.replace("_", " "))
    slug = slugify(" ".join(pieces))  # NFKD, ASCII only, spaces → hyphens, trimmed
    if len(slug) > BASE_MAX:
        cut = slug[: BASE_MAX + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[1:] else cut[:BASE_MAX]
    return slug.strip("-") or FALLBACK


def with_suffix(base: str, number: int) -> str:
    return base if number == 1 else f"{base}-{number}"


def free_slug(base: str) -> str:
    """``base``, or ``base-2``, ``base-3``… : the first that is neither taken nor reserved.
    One query, whatever the number of organizations with that name."""
    taken = set(
        Organization.objects.filter(slug__regex=rf"^{re.escape(base)}(-[0-9]+)?$").values_list(
            "slug", flat=True
        )
    )
    number = 1
    while with_suffix(base, number) in taken or with_suffix(base, number) in RESERVED_SLUGS:
        number += 1
    return with_suffix(base, number)
