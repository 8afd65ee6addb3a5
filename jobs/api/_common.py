"""What the jobs API views share: id bounds, uploads taken from a request (an upload cut
off at the size limit is a 413; each file is handed to the services as a temp file), the
output-option fields of a batch and their reading."""

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.utils.translation import gettext as _
from rest_framework import serializers

from core.api import MAX_ID, PayloadTooLarge
from jobs import services
from jobs.models import Batch
from jobs.uploads import UploadTooLarge

ID = {"min_value": 1, "max_value": MAX_ID}


def request_data(request):
    """``request.data``, turning an upload cut off at the size limit into a 413."""
    try:
        data = request.data
    except UploadTooLarge as exc:
        raise PayloadTooLarge(getattr(request._request, "upload_error", None)) from exc
    upload_error = getattr(request._request, "upload_error", None)
    if upload_error:
        raise PayloadTooLarge(upload_error)
    return data


@contextlib.contextmanager
def uploaded_media(upload) -> Iterator[services.UploadedMedia]:
    """The upload as a file on disk (it already is one: FILE_UPLOAD_MAX_MEMORY_SIZE=0)."""
    try:
        if hasattr(upload, "temporary_file_path"):
            yield services.UploadedMedia(Path(upload.temporary_file_path()), upload.name)
            return
        with tempfile.NamedTemporaryFile(suffix=".upload") as spool:
            shutil.copyfileobj(upload, spool, 1024 * 1024)
            spool.flush()
            yield services.UploadedMedia(Path(spool.name), upload.name)
    finally:
        upload.close()


def plain_data(data, *, lists: tuple[str, ...] = (), json_fields: tuple[str, ...] = ()):
    """A multipart form as a plain dict: ``lists`` as lists of values, ``json_fields`` (lists of
    objects, which a form cannot nest) decoded from the JSON text each holds. JSON bodies are
    returned as they are."""
    if not hasattr(data, "getlist"):
        return data
    plain = {}
    for key in data:
        values = data.getlist(key)
        if key in json_fields and len(values) == 1 and isinstance(values[0], str):
            try:
                plain[key] = json.loads(values[0])
            except ValueError as exc:
                raise serializers.ValidationError(
                    {key: [_("This field must hold a JSON list.")]}
                ) from exc
        elif key in lists:
            plain[key] = values
        else:
            plain[key] = values[-1]
    return plain


class OutputOptionsSerializer(serializers.Serializer):
    """A batch's output options, as a request gives them."""

    resolution = serializers.ChoiceField(
        choices=Batch.Resolution.choices, required=False, default=Batch.Resolution.SOURCE,
        help_text="The output's short side (the aspect is kept), or the avatar's own size.",
    )  # fmt: skip
    quality = serializers.ChoiceField(
        choices=Batch.Quality.choices, required=False, default=Batch.Quality.STANDARD
    )
    watermark = serializers.FileField(
        required=False, allow_null=True, default=None,
        help_text="A PNG drawn over every video (multipart only; at most 2 MB, 4096 px a side).",
    )  # fmt: skip
    watermark_corner = serializers.ChoiceField(
        choices=Batch.Corner.choices, required=False, default=Batch.Corner.BOTTOM_RIGHT
    )
    watermark_opacity = serializers.FloatField(
        required=False, default=0.8, min_value=0.0, max_value=1.0
    )


@contextlib.contextmanager
def output_settings(data: dict) -> Iterator[services.OutputSettings]:
    """The validated output options as the services take them (the watermark upload as a
    file on disk while the block runs)."""
    common = {
        "resolution": data["resolution"],
        "quality": data["quality"],
        "watermark_corner": data["watermark_corner"],
        "watermark_opacity": data["watermark_opacity"],
    }
    if data.get("watermark") is None:
        yield services.OutputSettings(**common)
        return
    with uploaded_media(data["watermark"]) as media:
        yield services.OutputSettings(watermark=media.path, **common)
