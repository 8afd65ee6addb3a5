"""Subtitles (inference/subtitles.py): wrapping CJK and Latin text, cues from sentence timings,
SRT and WebVTT written and read back, and uploads refused with the line of each problem."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from inference.subtitles import (
    MAX_SUBTITLE_BYTES,
    Cue,
    SubtitleError,
    cues_from_timings,
    display_width,
    format_srt,
    format_vtt,
    parse_srt,
    parse_vtt,
    read_srt,
    rewrap,
    wrap_text,
    write_srt,
    write_vtt,
)
from inference.tts import SentenceTiming

CHINESE = (
    "各位经销商朋友，大家好！欢迎来到我们的新车发布会，"
    "今天我们将为您介绍三款全新车型以及专属的优惠政策。"
)
ENGLISH = (
    "Dear partners across the country, welcome to the launch of our new models, with prices "
    "and offers made for your region."
)
CLOSING = set("，。！？、；：")


def test_display_width_counts_cjk_as_two_columns() -> None:
    assert display_width("abc") == 3
    assert display_width("你好") == 4
    assert display_width("你好，HeyGem") == 12
    assert display_width("ｅ") == 2  # full-width Latin


def test_chinese_wraps_between_characters_never_before_a_closing_mark() -> None:
    lines = wrap_text(CHINESE, 30)
    assert "".join(lines) == CHINESE
    assert len(lines) > 1
    assert all(display_width(line) <= 30 for line in lines)
    assert not any(line[0] in CLOSING for line in lines)
    # Lines end at clause marks where one is near, and are of similar length.
    assert sum(line[-1] in CLOSING for line in lines[:-1]) >= len(lines) - 2


def test_latin_wraps_at_spaces_keeping_words_whole() -> None:
    lines = wrap_text(ENGLISH, 42)
    assert " ".join(lines) == ENGLISH
    assert all(display_width(line) <= 42 for line in lines)
    widths = [display_width(line) for line in lines]
    assert max(widths) - min(widths) < 15  # balanced, no orphan word on the last line


def test_mixed_text_and_overlong_words() -> None:
    lines = wrap_text("我们的HeyGem Studio平台支持中文和English混合字幕，非常方便。", 24)
    assert all(display_width(line) <= 24 for line in lines)
    assert "HeyGem" in "".join(lines) and "English" in "".join(lines)
    assert not any("HeyGe" in line and "HeyGem" not in line for line in lines)  # word kept
    url = "https://example.com/" + "x" * 80
    lines = wrap_text(url, 30)
    assert "".join(lines) == url and all(display_width(line) <= 30 for line in lines)


def test_cues_from_timings_split_long_sentences_over_time() -> None:
    timings = [SentenceTiming(CHINESE, 0.0, 8.0), SentenceTiming("好的。", 8.3, 9.0)]
    cues = cues_from_timings(timings, line_width=20, max_lines=2)
    assert len(cues) > 2
    assert cues[0].start == 0.0 and cues[-2].end == 8.0
    assert cues[-1] == Cue(8.3, 9.0, "好的。")
    for a, b in itertools.pairwise(cues[:-1]):
        assert a.end == b.start  # the sentence's cues follow each other without a gap
    for cue in cues:
        assert cue.end > cue.start
        assert 1 <= len(cue.text.splitlines()) <= 2
        assert all(display_width(line) <= 20 for line in cue.text.splitlines())
    assert "".join(c.text.replace("\n", "") for c in cues[:-1]) == CHINESE
    # Cut after clause marks where whole clauses fit in a cue.
    assert cues[0].text == "各位经销商朋友，\n大家好！"
    assert cues[1].text.replace("\n", "") == "欢迎来到我们的新车发布会，"


def test_srt_and_vtt_round_trip(tmp_path: Path) -> None:
    cues = [
        Cue(0.0, 1.5, "各位经销商朋友，\n大家好！"),
        Cue(1.8, 4.25, "Welcome to <i>HeyGem</i> & friends"),
        Cue(3661.007, 3662.0, "一小时以后"),
    ]
    srt = format_srt(cues)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,500\n各位经销商朋友，\n大家好！\n\n2\n")
    assert "01:01:01,007 --> 01:01:02,000" in srt
    assert parse_srt(srt) == cues
    vtt = format_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n")
    assert "Welcome to <i>HeyGem</i> &amp; friends" in vtt  # escaped, shared tags kept
    assert parse_vtt(vtt) == cues
    assert read_srt(write_srt(cues, tmp_path / "a.srt")) == cues
    assert parse_vtt(write_vtt(cues, tmp_path / "a.vtt").read_bytes()) == cues
    assert (tmp_path / "a.srt").read_bytes()[:1] == b"1"  # UTF-8, no BOM


def test_uploads_with_bom_crlf_and_loose_formats_are_read() -> None:
    text = (
        "1\r\n00:00:01,000 --> 00:00:02,500\r\n你好\r\n\r\n3\r\n00:02.600 --> 00:04.000\r\nBye\r\n"
    )
    cues = parse_srt(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert cues == [Cue(1.0, 2.5, "你好"), Cue(2.6, 4.0, "Bye")]
    # Without cue numbers, out of order: read, and put in time order.
    loose = "00:00:05,000 --> 00:00:06,000\nsecond\n\n00:00:01,000 --> 00:00:02,000\nfirst\n"
    assert [c.text for c in parse_srt(loose)] == ["first", "second"]


def _errors(data: bytes | str, **kwargs: float) -> list[tuple[int, str]]:
    with pytest.raises(SubtitleError) as info:
        parse_srt(data, **kwargs)
    message = str(info.value)
    assert message.startswith(("The SRT file cannot be used: ", "The subtitle file cannot"))
    for line, problem in info.value.errors:
        assert (f"line {line}: {problem}" if line else problem) in message
    return info.value.errors


def test_malformed_srt_reports_every_problem_with_its_line() -> None:
    text = "\n".join(
        [
            "1",  # 1
            "00:00:01,000 --> 00:00:02,000",  # 2
            "fine",  # 3
            "",  # 4
            "2",  # 5
            "00:00:03,000 -> 00:00:04,000",  # 6: bad arrow
            "broken timing",  # 7
            "",  # 8
            "3",  # 9
            "00:00:06,000 --> 00:00:05,000",  # 10: ends before it starts
            "backwards",  # 11
            "",  # 12
            "4",  # 13
            "00:00:07,000 --> 00:00:08,000",  # 14: no text
            "",  # 15
            "five",  # 16: not a number
            "00:00:09,000 --> 00:00:10,000",  # 17
            "text",  # 18
            "",  # 19
            "6",  # 20
            "00:00:11,000 --> 00:01:75,000",  # 21: 75 seconds
            "bad clock",  # 22
            "",
        ]
    )
    errors = _errors(text)
    assert [line for line, _ in errors] == [6, 10, 14, 16, 21]
    problems = dict(errors)
    assert "timing line like '00:00:01,000 --> 00:00:03,500'" in problems[6]
    assert "ends before" in problems[10]
    assert "no text" in problems[14]
    assert "cue number" in problems[16]
    assert "below 60" in problems[21]


def test_a_missing_blank_line_between_cues_is_named() -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\nfirst\n2\n00:00:03,000 --> 00:00:04,000\nsecond\n"
    errors = _errors(text)
    assert len(errors) == 1 and errors[0][0] == 5
    assert "blank line is missing" in errors[0][1]


def test_encodings_other_than_utf8_are_refused_with_the_line() -> None:
    body = "1\n00:00:01,000 --> 00:00:02,000\nhello\n\n2\n00:00:03,000 --> 00:00:04,000\n你好\n"
    errors = _errors(body.encode("gbk"))
    assert errors[0][0] == 7 and "not UTF-8" in errors[0][1]
    errors = _errors(body.encode("utf-16"))
    assert errors[0][0] == 1 and "UTF-16" in errors[0][1]


def test_empty_huge_and_late_files_are_refused(tmp_path: Path) -> None:
    assert "no subtitles" in _errors("\n\n")[0][1]
    late = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:01:00,000 --> 00:01:02,000\nlate\n"
    errors = _errors(late, duration=30.0)
    assert errors[0][0] == 6 and "audio lasts only 30.0 s" in errors[0][1]
    big = tmp_path / "big.srt"
    big.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\n" + b"x" * MAX_SUBTITLE_BYTES)
    with pytest.raises(SubtitleError, match="at most 2 MB"):
        read_srt(big)
    with pytest.raises(SubtitleError, match="starts with the line 'WEBVTT'"):
        parse_vtt("1\n00:00:01.000 --> 00:00:02.000\nx\n")


def test_rewrap_narrows_uploaded_cues() -> None:
    cues = rewrap([Cue(0, 2, CHINESE)], 24)
    assert all(display_width(line) <= 24 for line in cues[0].text.splitlines())
    assert cues[0].text.replace("\n", "") == CHINESE


def test_writers_refuse_impossible_cues() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        format_srt([Cue(2.0, 1.0, "x")])
    with pytest.raises(ValueError, match="not negative"):
        format_vtt([Cue(-1.0, 1.0, "x")])
