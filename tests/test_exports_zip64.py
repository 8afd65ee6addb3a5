"""A bundle over 4 GiB through the real build path: valid ZIP64 for Python's zipfile, Info-ZIP
unzip, 7-Zip and libarchive, with no ZIP64 record on the first entry. The source video is a
sparse file, so it costs disk time, not disk space for the source."""

from __future__ import annotations

import os
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from django.http import QueryDict

from core.storage import media as media_storage
from exports import services
from exports.scope import scope_from_params
from jobs.models import Output

BIG = 4 * 2**30 + 64 * 2**20  # 4 GiB + 64 MiB: its own size needs ZIP64


def _crc32_of_zeros(n: int) -> int:
    block, crc = bytes(64 * 2**20), 0
    while n:
        step = min(n, len(block))
        crc = zlib.crc32(memoryview(block)[:step], crc)
        n -= step
    return crc


@pytest.mark.bigzip
@pytest.mark.django_db
def test_bundle_over_4_gib_is_valid_zip64_everywhere(member, make_outputs, settings):
    batch, outputs = make_outputs(member, ["small.mp4", "巨大な動画.mp4"])
    big = outputs[1]
    path = media_storage.media_path(big.file.name)
    with open(path, "wb") as f:
        f.truncate(BIG)
    Output.objects.filter(pk=big.pk).update(bytes=BIG, crc32=_crc32_of_zeros(BIG))
    q = QueryDict(mutable=True)
    q["batch"] = str(batch.pk)
    export, _ = services.export_request(membership=member, scope=scope_from_params(member, q))
    try:
        assert services.build_export(export_id=export.pk) == "ready"
        export.refresh_from_db()
        bundle = Path(settings.EXPORT_ROOT) / export.storage_key
        assert export.zip_bytes == bundle.stat().st_size > BIG

        with zipfile.ZipFile(bundle) as z:
            infos = z.infolist()
            assert [i.filename for i in infos] == ["manifest.csv", "small.mp4", "巨大な動画.mp4"]
            assert infos[2].file_size == BIG
            with z.open(infos[2]) as member_file:
                assert member_file.read(1 << 20) == bytes(1 << 20)
            assert (
                z.read("small.mp4") == media_storage.media_path(outputs[0].file.name).read_bytes()
            )
        # The first local header carries no ZIP64 extra field (Safari's unpacker rejects one).
        with open(bundle, "rb") as f:
            header = f.read(30)
            _name_len, extra_len = struct.unpack("<HH", header[26:30])
            assert header[:4] == b"PK\x03\x04" and extra_len == 0
            assert struct.unpack("<II", header[18:26]) != (0xFFFFFFFF, 0xFFFFFFFF)
        for tool in (["unzip", "-tqq"], ["7z", "t", "-bd"], ["bsdtar", "-tvf"]):
            result = subprocess.run(
                [*tool, str(bundle)], capture_output=True, text=True, timeout=900
            )
            assert result.returncode == 0, (tool, result.stdout[-2000:], result.stderr[-2000:])
    finally:
        for folder in (Path(settings.EXPORT_ROOT), Path(settings.MEDIA_ROOT)):
            for p in folder.rglob("*"):
                if p.is_file():
                    os.unlink(p)
