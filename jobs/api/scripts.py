"""API for what scripts need: the voices of this installation, and batch sheets (one row per
video: checked row by row, submitted only when every row is good) with their template."""

from __future__ import annotations

from dataclasses import asdict

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.tenancy.api import OrganizationAPIView
from core.api import error_body, errors
from core.http import content_disposition
from jobs import services
from jobs.api._common import ID, OutputOptionsSerializer, output_settings, plain_data, request_data
from jobs.api.batches import BatchDetailSerializer, batch_created
from jobs.models import Batch, Project
from jobs.sheets import MAX_SHEET_BYTES, SheetRow, template_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- voices ------------------------------------------------------------------------------------


class VoiceSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="What a script names (e.g. espeak:zh-cn).")
    engine = serializers.CharField(help_text="espeak or piper.")
    language = serializers.CharField(help_text="BCP 47, e.g. zh-CN, en-US.")
    name = serializers.CharField(help_text="For people, in the language of the call.")
    supports_rate = serializers.BooleanField()
    supports_pitch = serializers.BooleanField()
    default = serializers.BooleanField(help_text="The voice of scripts that name none.")


class VoiceListSerializer(serializers.Serializer):
    default = serializers.CharField(allow_null=True)
    results = VoiceSerializer(many=True)


class VoiceListView(OrganizationAPIView):
    model = Project
    permissions = {"GET": "project.view"}

    @extend_schema(
        operation_id="voices_list",
        tags=["scripts"],
        responses={200: VoiceListSerializer, **errors(403)},
        description="The voices scripts can be spoken with on this installation (espeak-ng's "
        "English and Mandarin, and the operator's Piper voices), the default first.",
    )
    def get(self, request, *args, **kwargs):
        voices = services.voices_for(self.organization)
        default = next((v.id for v in voices if v.default), None)
        return Response({"default": default, "results": [asdict(v) for v in voices]})


# --- sheets ------------------------------------------------------------------------------------


class SheetFileSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A batch sheet: .xlsx or CSV (UTF-8 or GB18030), one row per video, "
        "English or Chinese headers (see /sheets/template.xlsx)."
    )


class SheetSubmitSerializer(SheetFileSerializer, OutputOptionsSerializer):
    project = serializers.IntegerField(**ID)
    engine = serializers.CharField(max_length=32, required=False, default="warp")
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=20,
        help_text="Tags for the batch, besides those of the rows.",
    )  # fmt: skip


class NamedRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class RowVerdictSerializer(serializers.Serializer):
    row = serializers.IntegerField(source="number", help_text="The row in the sheet (1: header).")
    ok = serializers.BooleanField()
    avatar = serializers.SerializerMethodField()
    audio = serializers.SerializerMethodField()
    script = serializers.CharField(source="row.script")
    voice = serializers.CharField(source="voice.id", allow_null=True, default=None)
    output_name = serializers.SerializerMethodField()
    tags = serializers.ListField(child=serializers.CharField())
    subtitles = serializers.BooleanField(help_text="Burned into the video.")
    errors = serializers.ListField(child=serializers.CharField())

    def _ref(self, asset) -> dict | None:
        return {"id": asset.pk, "name": asset.original_name} if asset is not None else None

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_avatar(self, verdict) -> dict | None:
        return self._ref(verdict.avatar)

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_audio(self, verdict) -> dict | None:
        return self._ref(verdict.audio)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_output_name(self, verdict) -> str | None:
        return f"{verdict.output_name}.mp4" if verdict.output_name else None


class SheetCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Every row is good: the sheet can be submitted.")
    rows = RowVerdictSerializer(many=True)


def _sheet_rows(upload) -> list[SheetRow]:
    try:
        data = upload.read(MAX_SHEET_BYTES + 1)  # one byte more: the reader says it is too big
    finally:
        upload.close()
    return services.sheet_read(filename=upload.name or "", data=data)


class SheetCheckView(OrganizationAPIView):
    model = Batch
    organization_lookup = "project__organization"
    permissions = {"POST": "batch.submit"}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="sheets_check",
        tags=["scripts"],
        request=SheetFileSerializer,
        responses={200: SheetCheckSerializer, **errors(400, 403, 413)},
        description="Each row's verdict (avatar and audio found in the library, script and "
        "voice usable, output name, tags, subtitles) without submitting anything.",
    )
    def post(self, request, *args, **kwargs):
        body = SheetFileSerializer(data=request_data(request))
        body.is_valid(raise_exception=True)
        rows = _sheet_rows(body.validated_data["file"])
        verdicts = services.sheet_check(membership=self.membership, rows=rows)
        return Response(
            {
                "ok": all(v.ok for v in verdicts),
                "rows": RowVerdictSerializer(verdicts, many=True).data,
            }
        )


class SheetSubmitView(OrganizationAPIView):
    model = Batch
    organization_lookup = "project__organization"
    permissions = {"POST": "batch.submit"}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="sheets_submit",
        tags=["scripts"],
        request=SheetSubmitSerializer,
        responses={201: BatchDetailSerializer, **errors(400, 403, 413)},
        description="One batch with a video per row of the sheet. When any row is bad the "
        "answer is 400 with code `sheet_invalid` and every row's errors in `fields` "
        "(`row_<number>`), and nothing is submitted.",
    )
    def post(self, request, *args, **kwargs):
        raw = plain_data(request_data(request), lists=("tags",))
        body = SheetSubmitSerializer(data=raw)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = self.scoped(Project, "organization", data["project"])
        upload = data["file"]
        rows = _sheet_rows(upload)
        with output_settings(data) as output:
            try:
                batch = services.sheet_submit(
                    membership=self.membership,
                    project=project,
                    rows=rows,
                    engine=data["engine"],
                    name=data["name"],
                    tags=data["tags"],
                    output=output,
                    filename=upload.name or "",
                    meta=self.meta,
                )
            except services.SheetRefused as refused:
                return Response(
                    error_body("sheet_invalid", refused.summary, refused.message_dict), status=400
                )
        return batch_created(self, batch)


class SheetTemplateView(OrganizationAPIView):
    model = Batch
    organization_lookup = "project__organization"
    permissions = {"GET": "project.view"}

    @extend_schema(
        operation_id="sheets_template",
        tags=["scripts"],
        responses={
            (200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="The template."),
            **errors(403),
        },
        description="The sheet to start from: its columns, two example rows, and a help sheet "
        "saying what each column takes (in the language of the call).",
    )
    def get(self, request, *args, **kwargs):
        response = HttpResponse(template_xlsx(), content_type=XLSX)
        response["Content-Disposition"] = content_disposition("heygem_batch_sheet.xlsx")
        return response
