"""REST API for exports: ask for a bundle (de-duplicated), follow it, download it.

Thin over exports.services: the same scope rules, de-duplication, permission re-check in the
worker and download audit as the pages.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts.tenancy.api import OrganizationAPIView
from core.api import MAX_ID, Conflict, ErrorSerializer, errors
from core.http import range_asked
from exports import budgets, services
from exports.models import Export
from exports.scope import scope_from_params
from exports.storage import (
    bundle_response,
)
from jobs.models import Batch, Output, Project

ID = {"min_value": 1, "max_value": MAX_ID}


def _throttle(request, scope: str) -> None:
    wait = budgets.wait_seconds(request, scope)
    if wait is not None:
        # The message says how long already: no DRF sentence glued on (given ``wait``, DRF adds
        # "Expected available in …"); the wait still becomes the Retry-After header.
        refused = exceptions.Throttled(detail=budgets.message(scope, wait))
        refused.wait = wait
        raise refused


class ExportSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True, help_text="queued, building, ready, failed or expired."
    )
    project = serializers.IntegerField(source="project_id", read_only=True, allow_null=True)
    batch = serializers.IntegerField(source="batch_id", read_only=True, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    outputs = serializers.ListField(
        source="output_ids", child=serializers.IntegerField(), read_only=True
    )
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    slow = serializers.BooleanField(
        source="is_slow", read_only=True, help_text="Building past the soft limit: be patient."
    )
    download = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id", "status", "scope", "label", "project", "batch", "tags", "outputs",
            "file_count", "total_bytes", "zip_bytes", "filename", "requested_by",
            "requested_at", "started_at", "finished_at", "expires_at", "error", "slow",
            "download",
        ]  # fmt: skip
        read_only_fields = fields

    # null until the bundle is ready
    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_download(self, export: Export) -> str | None:
        if export.status != Export.Status.READY:
            return None
        return self.context["view"].api_url("export-download", export.pk)


class ExportRequestedSerializer(ExportSerializer):
    reused = serializers.SerializerMethodField(
        help_text="True when a ready, unexpired bundle holding the same videos was handed out "
        "instead of building a new one."
    )

    class Meta(ExportSerializer.Meta):
        fields = [*ExportSerializer.Meta.fields, "reused"]
        read_only_fields = fields

    def get_reused(self, export: Export) -> bool:
        return bool(self.context.get("reused"))


class ExportCreateSerializer(serializers.Serializer):
    batch = serializers.IntegerField(required=False, **ID, help_text="Pack one batch.")
    project = serializers.IntegerField(
        required=False, **ID, help_text="Pack a project (with tags: only those tags)."
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=20
    )
    outputs = serializers.ListField(
        child=serializers.IntegerField(**ID), required=False, default=list, max_length=1000,
        help_text="Pack these chosen videos.",
    )  # fmt: skip
    fresh = serializers.BooleanField(
        required=False, default=False,
        help_text="Build a new bundle even when a ready one holds the same videos.",
    )  # fmt: skip

    def validate(self, attrs):
        if not (attrs.get("batch") or attrs.get("project") or attrs["tags"] or attrs["outputs"]):
            raise serializers.ValidationError(
                _("Say what to pack: a batch, a project, tags or chosen outputs.")
            )
        return attrs


class ExportListView(ListModelMixin, OrganizationAPIView):
    model = Export
    permissions = {"GET": "export.view", "POST": "export.request"}
    serializer_class = ExportSerializer

    def get_base_queryset(self):
        return Export.objects.order_by("-requested_at", "-id")

    @extend_schema(operation_id="exports_list", tags=["exports"],
                   responses={200: ExportSerializer(many=True), **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        operation_id="exports_create",
        tags=["exports"],
        request=ExportCreateSerializer,
        responses={
            201: OpenApiResponse(ExportRequestedSerializer, description="A new export, queued."),
            200: OpenApiResponse(
                ExportRequestedSerializer,
                description="The identical export already queued or building, or a ready one "
                "holding the same videos (`reused`).",
            ),
            **errors(400, 403),
        },
        description="Ask for a bundle. Identical requests while one is queued or building "
        "return that one (200) instead of starting another. When a ready, unexpired bundle of "
        "the same selection holds the same videos (same outputs, sizes and SHA-256), it is "
        "returned (200, `reused: true`) instead of building the same ZIP again; send "
        "`fresh: true` to build a new one anyway.",
    )
    def post(self, request, *args, **kwargs):
        _throttle(request, "export-request")
        body = ExportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        # Ids of other organizations are answered like missing ones: 404.
        if data.get("batch"):
            self.scoped(Batch, "project__organization", data["batch"])
        if data.get("project"):
            self.scoped(Project, "organization", data["project"])
        if data["outputs"]:
            wanted = set(data["outputs"])
            found = Output.objects.filter(
                pk__in=wanted, job__batch__project__organization=self.organization
            ).count()
            if found != len(wanted):
                raise Http404(_("Some of the chosen outputs do not exist."))
        params = {
            "batch": [data["batch"]] if data.get("batch") else [],
            "project": [data["project"]] if data.get("project") else [],
            "tag": list(data["tags"]),
            "output": list(data["outputs"]),
        }
        scope = scope_from_params(self.membership, params)
        export, created = services.export_request(
            membership=self.membership, scope=scope, meta=self.meta, fresh=data["fresh"]
        )
        reused = not created and export.status == Export.Status.READY
        body = ExportRequestedSerializer(
            export, context={**self.get_serializer_context(), "reused": reused}
        )
        return Response(
            body.data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ExportDetailView(OrganizationAPIView):
    model = Export
    permissions = {"GET": "export.view"}
    serializer_class = ExportSerializer

    @extend_schema(operation_id="exports_retrieve", tags=["exports"],
                   responses={200: ExportSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)


BUNDLE = OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP bundle (or a range of it).")


class ExportDownloadView(OrganizationAPIView):
    model = Export
    permissions = {"GET": "export.download"}

    @extend_schema(
        operation_id="exports_download",
        tags=["exports"],
        responses={
            (200, "application/zip"): BUNDLE,
            (206, "application/zip"): BUNDLE,
            302: OpenApiResponse(description="S3 storage: a short-lived presigned URL."),
            304: OpenApiResponse(description="Your copy is current (If-None-Match)."),
            409: OpenApiResponse(
                ErrorSerializer, description="The bundle is not ready (or has expired)."
            ),
            416: OpenApiResponse(description="The requested range is outside the file."),
            **errors(403),
        },
        description="The bundle: streamed with `Range` support (resume with "
        "`Range: bytes=N-` and `If-Range: <ETag>`), or a redirect to S3. Each download is "
        "audited (with the range asked for); a transfer the same person resumes is the same "
        "download.",
    )
    def get(self, request, *args, **kwargs):
        export = self.get_object()
        _throttle(request, "export-download")
        django_request = request._request
        try:
            services.export_download_started(
                membership=self.membership,
                export=export,
                range_header=range_asked(django_request),
                meta=self.meta,
            )
        except ValidationError as exc:
            raise Conflict(" ".join(exc.messages), code="not_ready") from exc
        return bundle_response(django_request, export)
