"""API for the library: projects and assets (uploads validated by
``jobs.services.asset_create`` exactly as on the pages)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts.tenancy.api import OrganizationAPIView
from core.api import errors
from jobs import selectors, services
from jobs.api._common import request_data, uploaded_media
from jobs.models import Asset, Project


class ProjectSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, allow_null=True, default=None
    )
    batch_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created_at", "created_by", "batch_count"]
        read_only_fields = fields


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ProjectFilterSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=120, help_text="Exact name.")


class ProjectListView(ListModelMixin, OrganizationAPIView):
    model = Project
    permissions = {"GET": "project.view", "POST": "project.create"}
    serializer_class = ProjectSerializer

    def get_base_queryset(self):
        projects = selectors.project_list(self.membership).select_related("created_by")
        params = ProjectFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        if params.validated_data.get("name"):
            projects = projects.filter(name=params.validated_data["name"])
        return projects

    @extend_schema(operation_id="projects_list", tags=["projects"],
                   parameters=[ProjectFilterSerializer],
                   responses={200: ProjectSerializer(many=True), **errors(400, 403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(operation_id="projects_create", tags=["projects"],
                   request=ProjectCreateSerializer,
                   responses={201: ProjectSerializer, **errors(400, 403)})  # fmt: skip
    def post(self, request, *args, **kwargs):
        body = ProjectCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = services.project_create(
            membership=self.membership, meta=self.meta, **body.validated_data
        )
        project.batch_count = 0
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(OrganizationAPIView):
    model = Project
    permissions = {"GET": "project.view"}
    serializer_class = ProjectSerializer

    def get_base_queryset(self):
        return selectors.project_list(self.membership).select_related("created_by")

    @extend_schema(operation_id="projects_retrieve", tags=["projects"],
                   responses={200: ProjectSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(ProjectSerializer(self.get_object()).data)


# --- assets ----------------------------------------------------------------------------------


class AssetSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name", read_only=True)
    text = serializers.CharField(
        read_only=True, help_text="Audio spoken from a script: the script (else empty)."
    )
    voice = serializers.CharField(
        read_only=True, help_text="Audio spoken from a script: the voice's id (else empty)."
    )
    has_subtitles = serializers.BooleanField(
        read_only=True,
        help_text="Videos of this audio get subtitles: an attached SRT or a script's timing.",
    )
    subtitles_name = serializers.CharField(
        read_only=True, help_text="The name of the SRT file attached (empty: none)."
    )
    reused = serializers.BooleanField(
        read_only=True,
        help_text="On upload: true when these bytes were already in the library as this kind, "
        "and this is that asset (nothing new was stored).",
    )

    class Meta:
        model = Asset
        fields = [
            "id", "kind", "name", "duration", "bytes", "sha256", "container", "video_codec",
            "audio_codec", "width", "height", "fps", "sample_rate", "created_at", "text",
            "voice", "has_subtitles", "subtitles_name", "reused",
        ]  # fmt: skip
        read_only_fields = fields


class AssetRenameSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=400, help_text="The new display name (at most 200 characters are kept)."
    )


class AssetUploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Asset.Kind.choices)
    file = serializers.FileField(help_text="The media file; probed with ffmpeg, never trusted.")


class AssetFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Asset.Kind.choices, required=False)
    q = serializers.CharField(
        required=False, max_length=200, help_text="Words the name (or a script's text) holds."
    )


class AssetListView(ListModelMixin, OrganizationAPIView):
    model = Asset
    permissions = {"GET": "project.view", "POST": "asset.upload"}
    serializer_class = AssetSerializer
    parser_classes = [MultiPartParser]

    def get_base_queryset(self):
        params = AssetFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.library(
            self.membership,
            kind=params.validated_data.get("kind", ""),
            query=params.validated_data.get("q", ""),
        )

    @extend_schema(operation_id="assets_list", tags=["assets"],
                   parameters=[AssetFilterSerializer],
                   responses={200: AssetSerializer(many=True), **errors(400, 403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        operation_id="assets_upload",
        tags=["assets"],
        request=AssetUploadSerializer,
        responses={201: AssetSerializer, **errors(400, 403, 413)},
        description="Upload one avatar video or audio track (multipart). It is probed with "
        "ffmpeg (real streams, duration, size, a face for avatars); a refused file leaves "
        "nothing behind. The same bytes already in the library as this kind are not stored "
        "again: the answer is 200 with that asset and `reused: true`.",
    )
    def post(self, request, *args, **kwargs):
        body = AssetUploadSerializer(data=request_data(request))
        body.is_valid(raise_exception=True)
        with uploaded_media(body.validated_data["file"]) as media:
            asset = services.asset_create(
                membership=self.membership,
                kind=body.validated_data["kind"],
                upload=media,
                meta=self.meta,
            )
        code = status.HTTP_200_OK if asset.reused else status.HTTP_201_CREATED
        return Response(AssetSerializer(asset).data, status=code)


class AssetDetailView(OrganizationAPIView):
    """One library entry: read, rename, delete."""

    model = Asset
    permissions = {"GET": "project.view", "PATCH": "asset.rename", "DELETE": "asset.delete"}
    serializer_class = AssetSerializer

    def get_base_queryset(self):
        return Asset.objects.in_library()

    @extend_schema(operation_id="assets_retrieve", tags=["assets"],
                   responses={200: AssetSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(AssetSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="assets_rename",
        tags=["assets"],
        request=AssetRenameSerializer,
        responses={200: AssetSerializer, **errors(400, 403)},
        description="Rename a library entry (its display name; videos already made keep "
        "theirs). Recorded in the audit log as `asset.renamed`.",
    )
    def patch(self, request, *args, **kwargs):
        asset = self.get_object()
        body = AssetRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        asset = services.asset_rename(
            membership=self.membership, asset=asset, name=body.validated_data["name"],
            meta=self.meta,
        )  # fmt: skip
        return Response(AssetSerializer(asset).data)

    @extend_schema(
        operation_id="assets_delete",
        tags=["assets"],
        responses={204: None, **errors(400, 403)},
        description="Delete a library entry and its file. Refused (400, code `in_use`) while "
        "a queued or running job uses it; videos already made keep working. Members may "
        "delete what they uploaded, admins anything. Recorded as `asset.deleted`.",
    )
    def delete(self, request, *args, **kwargs):
        services.asset_delete(membership=self.membership, asset=self.get_object(), meta=self.meta)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubtitleUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="An SRT file (UTF-8; WebVTT is read too), at most 2 MB; every cue must start "
        "before the audio ends."
    )


class AssetSubtitlesView(OrganizationAPIView):
    """The subtitles of an audio track: attached from an SRT file, or removed."""

    model = Asset
    permissions = {"POST": "asset.upload", "DELETE": "asset.upload"}
    serializer_class = AssetSerializer
    parser_classes = [MultiPartParser]

    def get_base_queryset(self):
        return Asset.objects.in_library()

    @extend_schema(
        operation_id="assets_subtitles_attach",
        tags=["assets"],
        request=SubtitleUploadSerializer,
        responses={200: AssetSerializer, **errors(400, 403, 413)},
        description="Attach an SRT file to an audio asset (replacing one attached before). "
        "Every video of this audio then gets these subtitles: beside it in bundles, burned in "
        "when asked. A file with problems is refused with each problem and its line number.",
    )
    def post(self, request, *args, **kwargs):
        from inference.subtitles import MAX_SUBTITLE_BYTES

        asset = self.get_object()
        body = SubtitleUploadSerializer(data=request_data(request))
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        try:
            # One byte more than the limit: enough for the service to say it is too large.
            data = upload.read(MAX_SUBTITLE_BYTES + 1)
        finally:
            upload.close()
        asset = services.asset_attach_subtitles(
            membership=self.membership,
            asset=asset,
            data=data,
            filename=upload.name or "",
            meta=self.meta,
        )
        return Response(AssetSerializer(asset).data)

    @extend_schema(
        operation_id="assets_subtitles_remove",
        tags=["assets"],
        responses={204: None, **errors(400, 403)},
        description="Remove the SRT attached to an audio asset (videos already made keep theirs).",
    )
    def delete(self, request, *args, **kwargs):
        services.asset_detach_subtitles(
            membership=self.membership, asset=self.get_object(), meta=self.meta
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
