"""REST API for projects, assets, batches, render jobs and outputs.

Thin: uploads are validated by jobs.services.asset_create exactly as on the pages; batches are
submitted, canceled and retried by the same services; reads are the base view's
organization-scoped querysets.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.tenancy.api import OrganizationAPIView
from core.api import MAX_ID, PayloadTooLarge, errors
from core.storage import media as storage
from jobs import selectors, services
from jobs.models import Asset, Batch, Output, Project, RenderJob
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


# --- projects --------------------------------------------------------------------------------


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

    class Meta:
        model = Asset
        fields = [
            "id", "kind", "name", "duration", "bytes", "sha256", "container", "video_codec",
            "audio_codec", "width", "height", "fps", "sample_rate", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class AssetUploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Asset.Kind.choices)
    file = serializers.FileField(help_text="The media file; probed with ffmpeg, never trusted.")


class AssetFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Asset.Kind.choices, required=False)


class AssetListView(ListModelMixin, OrganizationAPIView):
    model = Asset
    permissions = {"GET": "project.view", "POST": "asset.upload"}
    serializer_class = AssetSerializer
    parser_classes = [MultiPartParser]

    def get_base_queryset(self):
        params = AssetFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        assets = Asset.objects.order_by("-created_at", "-id")
        if params.validated_data.get("kind"):
            assets = assets.filter(kind=params.validated_data["kind"])
        return assets

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
        "nothing behind.",
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
        return Response(AssetSerializer(asset).data, status=status.HTTP_201_CREATED)


# --- jobs and batches ------------------------------------------------------------------------


class OutputSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    bytes = serializers.IntegerField()
    download = serializers.URLField()


class JobSerializer(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="batch_id", read_only=True)
    status = serializers.CharField(
        read_only=True, help_text="queued, running, succeeded, failed or canceled."
    )
    percent = serializers.IntegerField(read_only=True)
    avatar = serializers.IntegerField(source="avatar_id", read_only=True)
    avatar_name = serializers.CharField(source="avatar.original_name", read_only=True)
    audio = serializers.IntegerField(source="audio_id", read_only=True)
    audio_name = serializers.CharField(source="audio.original_name", read_only=True)
    output = serializers.SerializerMethodField()

    class Meta:
        model = RenderJob
        fields = [
            "id", "batch", "status", "percent", "frames_done", "frames_total", "attempts",
            "error", "engine", "avatar", "avatar_name", "audio", "audio_name", "queued_at",
            "started_at", "finished_at", "output",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OutputSummarySerializer(allow_null=True))
    def get_output(self, job: RenderJob) -> dict | None:
        output = getattr(job, "output", None) if job.status == RenderJob.Status.SUCCEEDED else None
        if output is None:
            return None
        view = self.context["view"]
        return {
            "id": output.pk,
            "name": output.name,
            "bytes": output.bytes,
            "download": view.api_url("output-download", output.pk),
        }


class BatchCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    canceled = serializers.IntegerField()


class BatchSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, allow_null=True, default=None
    )
    tags = serializers.SerializerMethodField()
    status = serializers.CharField(
        read_only=True,
        help_text="queued, running, succeeded, failed, canceled, partial (finished with some "
        "failed or canceled) or empty.",
    )
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id", "project", "name", "engine", "tags", "status", "counts", "created_at",
            "completed_at", "created_by",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, batch: Batch) -> list[str]:
        return [t.name for t in batch.tags.all()]

    @extend_schema_field(BatchCountsSerializer)
    def get_counts(self, batch: Batch) -> dict:
        return {
            "total": batch.jobs_total,
            "queued": batch.jobs_queued,
            "running": batch.jobs_running,
            "succeeded": batch.jobs_succeeded,
            "failed": batch.jobs_failed,
            "canceled": batch.jobs_canceled,
        }


class BatchDetailSerializer(BatchSerializer):
    percent = serializers.SerializerMethodField()
    jobs = serializers.SerializerMethodField()

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "percent", "jobs"]
        read_only_fields = fields

    def _jobs(self, batch: Batch) -> list[RenderJob]:
        if not hasattr(batch, "_api_jobs"):
            batch._api_jobs = list(selectors.batch_jobs(batch))
        return batch._api_jobs

    @extend_schema_field(serializers.IntegerField())
    def get_percent(self, batch: Batch) -> int:
        """Finished jobs count whole, running ones by their frames."""
        jobs = self._jobs(batch)
        if not jobs:
            return 0
        done = sum(
            1.0
            if j.is_final
            else (min(1.0, j.frames_done / j.frames_total) if j.frames_total else 0)
            for j in jobs
        )
        return int(100 * done / len(jobs))

    @extend_schema_field(JobSerializer(many=True))
    def get_jobs(self, batch: Batch) -> list[dict]:
        return JobSerializer(self._jobs(batch), many=True, context=self.context).data


class BatchCreateSerializer(serializers.Serializer):
    project = serializers.IntegerField(**ID)
    avatars = serializers.ListField(
        child=serializers.IntegerField(**ID), required=False, default=list, max_length=1000,
        help_text="Ids of avatar assets already uploaded.",
    )  # fmt: skip
    audios = serializers.ListField(
        child=serializers.IntegerField(**ID), required=False, default=list, max_length=1000,
        help_text="Ids of audio assets already uploaded.",
    )  # fmt: skip
    avatar_files = serializers.ListField(
        child=serializers.FileField(), required=False, default=list, max_length=200,
        help_text="Avatar videos to upload with the request (multipart only).",
    )  # fmt: skip
    audio_files = serializers.ListField(
        child=serializers.FileField(), required=False, default=list, max_length=200,
        help_text="Audio tracks to upload with the request (multipart only).",
    )  # fmt: skip
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=20
    )
    engine = serializers.CharField(max_length=32, required=False, default="warp")
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class BatchFilterSerializer(serializers.Serializer):
    project = serializers.IntegerField(required=False, **ID)


def _with_counts(batches):
    return batches.with_counts().select_related("created_by").prefetch_related("tags")


class BatchListView(ListModelMixin, OrganizationAPIView):
    model = Batch
    organization_lookup = "project__organization"
    permissions = {"GET": "project.view", "POST": "batch.submit"}
    serializer_class = BatchSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_base_queryset(self):
        params = BatchFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        batches = (
            Batch.objects.order_by("-created_at", "-id")
            .select_related("created_by")
            .prefetch_related("tags")
        )
        if params.validated_data.get("project"):
            batches = batches.filter(project=params.validated_data["project"])
        return batches

    def paginate_queryset(self, queryset):
        # Job counts for the batches of this page only, not a join over every job.
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.with_job_counts(page)

    @extend_schema(operation_id="batches_list", tags=["batches"],
                   parameters=[BatchFilterSerializer],
                   responses={200: BatchSerializer(many=True), **errors(400, 403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    def _assets(self, kind: str, ids: list[int]) -> list[Asset]:
        found = selectors.assets_by_ids(self.membership, kind, ids)
        if len(found) != len(set(ids)):
            raise Http404(f"One of the {kind} assets does not exist.")
        return found

    def _upload(self, kind: str, files, field: str) -> list[Asset]:
        """Validate and store each file; stop at the first refused one (those before it stay
        in the asset library, as on the pages)."""
        accepted = []
        for upload in files:
            try:
                with uploaded_media(upload) as media:
                    accepted.append(
                        services.asset_create(
                            membership=self.membership, kind=kind, upload=media, meta=self.meta
                        )
                    )
            except ValidationError as exc:
                kept = (
                    f" {len(accepted)} accepted files were kept in the asset library."
                    if accepted
                    else ""
                )
                raise serializers.ValidationError({field: [" ".join(exc.messages) + kept]}) from exc
        return accepted

    @extend_schema(
        operation_id="batches_create",
        tags=["batches"],
        request={
            "application/json": BatchCreateSerializer,
            "multipart/form-data": BatchCreateSerializer,
        },
        responses={201: BatchDetailSerializer, **errors(400, 403, 413)},
        description="One render job per (avatar, audio) pair, queued at once. Name assets by "
        "id, or upload files in the same (multipart) request. Files are validated in order; the "
        "first refused one stops the request (400), and the files accepted before it stay in "
        "the asset library. No batch is made unless every file is accepted.",
    )
    def post(self, request, *args, **kwargs):
        body = BatchCreateSerializer(data=request_data(request))
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = self.scoped(Project, "organization", data["project"])
        avatars = self._assets(Asset.Kind.AVATAR, data["avatars"])
        audios = self._assets(Asset.Kind.AUDIO, data["audios"])
        # Refuse what is cheap to check before any upload is probed and stored.
        services.parse_tags(data["tags"])
        services.engine_check(data["engine"])
        avatars += self._upload(Asset.Kind.AVATAR, data["avatar_files"], "avatar_files")
        audios += self._upload(Asset.Kind.AUDIO, data["audio_files"], "audio_files")
        batch = services.batch_submit(
            membership=self.membership,
            project=project,
            avatars=avatars,
            audios=audios,
            tags=data["tags"],
            engine=data["engine"],
            name=data["name"],
            meta=self.meta,
        )
        batch = _with_counts(Batch.objects.filter(pk=batch.pk)).select_related("project").get()
        context = self.get_serializer_context()
        return Response(
            BatchDetailSerializer(batch, context=context).data, status=status.HTTP_201_CREATED
        )


class BatchDetailView(OrganizationAPIView):
    model = Batch
    organization_lookup = "project__organization"
    permissions = {"GET": "project.view"}
    serializer_class = BatchDetailSerializer

    def get_base_queryset(self):
        return _with_counts(Batch.objects.all())

    @extend_schema(operation_id="batches_retrieve", tags=["batches"],
                   responses={200: BatchDetailSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)


class AffectedSerializer(serializers.Serializer):
    affected = serializers.IntegerField(help_text="How many jobs were canceled or told to stop.")


class BatchCancelView(OrganizationAPIView):
    model = Batch
    organization_lookup = "project__organization"
    permissions = {"POST": "batch.cancel"}
    serializer_class = AffectedSerializer

    @extend_schema(operation_id="batches_cancel", tags=["batches"], request=None,
                   responses={200: AffectedSerializer, **errors(400, 403)})  # fmt: skip
    def post(self, request, *args, **kwargs):
        affected = services.batch_cancel(
            membership=self.membership, batch=self.get_object(), meta=self.meta
        )
        return Response({"affected": affected})


class _JobView(OrganizationAPIView):
    model = RenderJob
    organization_lookup = "batch__project__organization"
    serializer_class = JobSerializer

    def get_base_queryset(self):
        return RenderJob.objects.select_related("avatar", "audio", "output")

    def job_response(self, pk: int) -> Response:
        job = self.get_queryset().get(pk=pk)
        return Response(self.get_serializer(job).data)


class JobDetailView(_JobView):
    permissions = {"GET": "project.view"}

    @extend_schema(operation_id="jobs_retrieve", tags=["jobs"],
                   responses={200: JobSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)


class JobCancelView(_JobView):
    permissions = {"POST": "job.cancel"}

    @extend_schema(operation_id="jobs_cancel", tags=["jobs"], request=None,
                   responses={200: JobSerializer, **errors(400, 403)})  # fmt: skip
    def post(self, request, *args, **kwargs):
        job = self.get_object()
        services.job_cancel(membership=self.membership, job=job, meta=self.meta)
        return self.job_response(job.pk)


class JobRetryView(_JobView):
    permissions = {"POST": "job.retry"}

    @extend_schema(operation_id="jobs_retry", tags=["jobs"], request=None,
                   responses={200: JobSerializer, **errors(400, 403)})  # fmt: skip
    def post(self, request, *args, **kwargs):
        job = self.get_object()
        services.job_retry(membership=self.membership, job=job, meta=self.meta)
        return self.job_response(job.pk)


# --- outputs ---------------------------------------------------------------------------------


class OutputSerializer(serializers.ModelSerializer):
    job = serializers.IntegerField(source="job_id", read_only=True)
    batch = serializers.IntegerField(source="job.batch_id", read_only=True)
    project = serializers.IntegerField(source="job.batch.project_id", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = Output
        fields = [
            "id", "job", "batch", "project", "name", "bytes", "sha256", "crc32", "duration",
            "width", "height", "created_at", "download",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_download(self, output: Output) -> str:
        return self.context["view"].api_url("output-download", output.pk)


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
