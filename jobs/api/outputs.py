"""API for rendered videos: list, detail and ranged download (or a presigned link when media
live in a bucket)."""

from __future__ import annotations

from pathlib import PurePosixPath

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts.tenancy.api import OrganizationAPIView
from core.api import errors
from core.http import content_disposition
from core.storage import media as storage
from jobs import services
from jobs.api._common import ID
from jobs.models import Output


class OutputSerializer(serializers.ModelSerializer):
    job = serializers.IntegerField(source="job_id", read_only=True)
    batch = serializers.IntegerField(source="job.batch_id", read_only=True)
    project = serializers.IntegerField(source="job.batch.project_id", read_only=True)
    download = serializers.SerializerMethodField()
    subtitles = serializers.SerializerMethodField(
        help_text="The video's subtitles (SRT; ?type=vtt for WebVTT), null when it has none."
    )

    class Meta:
        model = Output
        fields = [
            "id", "job", "batch", "project", "name", "bytes", "sha256", "crc32", "duration",
            "width", "height", "created_at", "download", "subtitles",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_download(self, output: Output) -> str:
        return self.context["view"].api_url("output-download", output.pk)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_subtitles(self, output: Output) -> str | None:
        if not output.subtitles:
            return None
        return self.context["view"].api_url("output-subtitles", output.pk)


class OutputFilterSerializer(serializers.Serializer):
    batch = serializers.IntegerField(required=False, **ID)
    project = serializers.IntegerField(required=False, **ID)
    tag = serializers.CharField(required=False, max_length=40)


class OutputListView(ListModelMixin, OrganizationAPIView):
    model = Output
    organization_lookup = "job__batch__project__organization"
    permissions = {"GET": "project.view"}
    serializer_class = OutputSerializer

    def get_base_queryset(self):
        params = OutputFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        outputs = Output.objects.select_related("job__batch").order_by("-job_id")
        if p.get("batch"):
            outputs = outputs.filter(job__batch=p["batch"])
        if p.get("project"):
            outputs = outputs.filter(job__batch__project=p["project"])
        if p.get("tag"):
            tagged = Output.objects.filter(job__batch__tags__name=p["tag"].strip().lower())
            outputs = outputs.filter(pk__in=tagged.values("pk"))
        return outputs

    @extend_schema(operation_id="outputs_list", tags=["outputs"],
                   parameters=[OutputFilterSerializer],
                   responses={200: OutputSerializer(many=True), **errors(400, 403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class OutputDetailView(OrganizationAPIView):
    model = Output
    organization_lookup = "job__batch__project__organization"
    permissions = {"GET": "project.view"}
    serializer_class = OutputSerializer

    def get_base_queryset(self):
        return Output.objects.select_related("job__batch")

    @extend_schema(operation_id="outputs_retrieve", tags=["outputs"],
                   responses={200: OutputSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)


BINARY = OpenApiResponse(OpenApiTypes.BINARY, description="The file (or the requested range).")


class OutputDownloadView(OrganizationAPIView):
    model = Output
    organization_lookup = "job__batch__project__organization"
    permissions = {"GET": "output.download"}

    @extend_schema(
        operation_id="outputs_download",
        tags=["outputs"],
        responses={
            (200, "video/mp4"): BINARY,
            (206, "video/mp4"): BINARY,
            302: OpenApiResponse(description="Media in a bucket: a short-lived presigned URL."),
            304: OpenApiResponse(description="Your copy is current (If-None-Match)."),
            416: OpenApiResponse(description="The requested range is outside the file."),
            **errors(403),
        },
        description="The video. Supports `Range: bytes=N-` to resume, ETag / If-None-Match.",
    )
    def get(self, request, *args, **kwargs):
        output = self.get_object()
        return storage.serve(
            request._request, output.file.name, content_type="video/mp4", filename=output.name
        )


class SubtitleFormatSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=[("srt", "SubRip"), ("vtt", "WebVTT")], required=False, default="srt"
    )


class OutputSubtitlesView(OrganizationAPIView):
    model = Output
    organization_lookup = "job__batch__project__organization"
    permissions = {"GET": "output.download"}

    @extend_schema(
        operation_id="outputs_subtitles",
        tags=["outputs"],
        parameters=[SubtitleFormatSerializer],
        responses={
            (200, "application/x-subrip"): OpenApiResponse(OpenApiTypes.STR),
            (200, "text/vtt"): OpenApiResponse(OpenApiTypes.STR),
            **errors(400, 403),
        },
        description="The video's subtitles: the SRT shipped beside it in bundles, or "
        "`?type=vtt` for WebVTT (made from it, for HTML players). 404 when it has none.",
    )
    def get(self, request, *args, **kwargs):
        params = SubtitleFormatSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        kind = params.validated_data["type"]
        output = self.get_object()
        try:
            text = services.output_subtitles(output, kind)
        except FileNotFoundError as exc:
            raise NotFound(
                _("The video %(name)s has no subtitles.") % {"name": output.name}
            ) from exc
        content_type = "text/vtt" if kind == "vtt" else "application/x-subrip"
        response = HttpResponse(text.encode("utf-8"), content_type=f"{content_type}; charset=utf-8")
        name = f"{PurePosixPath(output.name).stem or 'subtitles'}.{kind}"
        response["Content-Disposition"] = content_disposition(name)
        return response
