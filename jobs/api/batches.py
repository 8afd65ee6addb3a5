"""API for batches and render jobs: submitted, canceled and retried by the same services as
the pages; progress and counts read from the organization-scoped querysets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.tenancy.api import OrganizationAPIView
from core.api import errors
from jobs import selectors, services
from jobs.api._common import ID, request_data, uploaded_media
from jobs.models import Asset, Batch, Project, RenderJob


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
    error = serializers.CharField(
        source="error_text",
        read_only=True,
        help_text="Why the job failed or is waiting again, in the language of the call.",
    )
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
            raise Http404(
                _("One of the avatar assets does not exist.")
                if kind == Asset.Kind.AVATAR
                else _("One of the audio assets does not exist.")
            )
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
                reasons = exc.messages
                if accepted:
                    reasons.append(
                        ngettext(
                            "%(num)d accepted file was kept in the asset library.",
                            "%(num)d accepted files were kept in the asset library.",
                            len(accepted),
                        )
                        % {"num": len(accepted)}
                    )
                raise serializers.ValidationError({field: [" ".join(reasons)]}) from exc
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
