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
from jobs.api._common import (
    ID,
    OutputOptionsSerializer,
    output_settings,
    plain_data,
    request_data,
    uploaded_media,
)
from jobs.models import Asset, Batch, Project, RenderJob, Script


class OutputSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    bytes = serializers.IntegerField()
    download = serializers.URLField()
    subtitles = serializers.URLField(
        allow_null=True, help_text="The video's subtitles (SRT; ?type=vtt for WebVTT), if any."
    )


class ScriptSummarySerializer(serializers.ModelSerializer):
    audio = serializers.IntegerField(
        source="audio_id",
        allow_null=True,
        help_text="The audio asset it was spoken into (null until a render worker speaks it).",
    )

    class Meta:
        model = Script
        fields = ["id", "text", "voice", "rate", "pitch", "audio"]
        read_only_fields = fields


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
    audio = serializers.IntegerField(
        source="audio_id", read_only=True, allow_null=True,
        help_text="The uploaded audio asset it speaks (null when it speaks a script).",
    )  # fmt: skip
    audio_name = serializers.SerializerMethodField(
        help_text="The name of the audio it speaks (a script's, once spoken)."
    )
    script = ScriptSummarySerializer(read_only=True, allow_null=True)
    output = serializers.SerializerMethodField()

    class Meta:
        model = RenderJob
        fields = [
            "id", "batch", "status", "percent", "frames_done", "frames_total", "attempts",
            "error", "engine", "avatar", "avatar_name", "audio", "audio_name", "script",
            "output_name", "burn_subtitles", "queued_at", "started_at", "finished_at", "output",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_audio_name(self, job: RenderJob) -> str | None:
        audio = job.audio_asset
        return audio.original_name if audio is not None else None

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
            "subtitles": view.api_url("output-subtitles", output.pk) if output.subtitles else None,
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
    has_watermark = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id", "project", "name", "engine", "tags", "status", "counts", "created_at",
            "completed_at", "created_by", "resolution", "quality", "has_watermark",
            "watermark_corner", "watermark_opacity",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_has_watermark(self, batch: Batch) -> bool:
        return bool(batch.watermark)

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


class ScriptInputSerializer(serializers.Serializer):
    text = serializers.CharField(
        max_length=100_000, allow_blank=True, trim_whitespace=False,
        help_text="The words to speak (split at sentences; at most TTS_MAX_CHARS characters).",
    )  # fmt: skip
    voice = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="",
        help_text="A voice id from /voices/ (empty: the default voice).",
    )  # fmt: skip
    rate = serializers.FloatField(required=False, default=1.0, help_text="0.5-2, 1 is normal.")
    pitch = serializers.FloatField(required=False, default=1.0, help_text="0.5-1.5, 1 is normal.")


class JobInputSerializer(serializers.Serializer):
    avatar = serializers.IntegerField(**ID)
    audio = serializers.IntegerField(required=False, allow_null=True, default=None, **ID)
    script = ScriptInputSerializer(required=False, allow_null=True, default=None)
    output_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="",
        help_text="The video's name in bundles, without .mp4 (empty: avatar__audio).",
    )  # fmt: skip
    burn_subtitles = serializers.BooleanField(required=False, default=False)


class BatchCreateSerializer(OutputOptionsSerializer):
    project = serializers.IntegerField(**ID)
    avatars = serializers.ListField(
        child=serializers.IntegerField(**ID), required=False, default=list, max_length=1000,
        help_text="Ids of avatar assets already uploaded.",
    )  # fmt: skip
    audios = serializers.ListField(
        child=serializers.IntegerField(**ID), required=False, default=list, max_length=1000,
        help_text="Ids of audio assets already uploaded.",
    )  # fmt: skip
    scripts = serializers.ListField(
        child=ScriptInputSerializer(), required=False, default=list, max_length=1000,
        help_text="Scripts each avatar speaks, like audio tracks (multipart: one JSON list).",
    )  # fmt: skip
    jobs = serializers.ListField(
        child=JobInputSerializer(), required=False, default=list, max_length=1000,
        help_text="Videos asked for one by one, besides avatars x (audios + scripts): an "
        "avatar with an audio or a script each (multipart: one JSON list).",
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
    burn_subtitles = serializers.BooleanField(
        required=False, default=False,
        help_text="Burn subtitles into the avatars x (audios + scripts) videos (audio tracks "
        "need attached subtitles).",
    )  # fmt: skip


def _script_spec(data: dict) -> services.ScriptSpec:
    return services.ScriptSpec(
        text=data["text"], voice=data["voice"], rate=data["rate"], pitch=data["pitch"]
    )


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

    def _job_specs(self, jobs: list[dict]) -> list[services.JobSpec]:
        """The explicit jobs with their assets (all looked up in this organization)."""
        avatars = {
            a.pk: a for a in self._assets(Asset.Kind.AVATAR, list({j["avatar"] for j in jobs}))
        }
        audio_ids = list({j["audio"] for j in jobs if j["audio"]})
        audios = {a.pk: a for a in self._assets(Asset.Kind.AUDIO, audio_ids)}
        return [
            services.JobSpec(
                avatar=avatars[job["avatar"]],
                audio=audios[job["audio"]] if job["audio"] else None,
                script=_script_spec(job["script"]) if job["script"] else None,
                output_name=services.output_stem(job["output_name"]),
                burn_subtitles=job["burn_subtitles"],
                row=number,
            )
            for number, job in enumerate(jobs, start=1)
        ]

    @extend_schema(
        operation_id="batches_create",
        tags=["batches"],
        request={
            "application/json": BatchCreateSerializer,
            "multipart/form-data": BatchCreateSerializer,
        },
        responses={201: BatchDetailSerializer, **errors(400, 403, 413)},
        description="Render jobs queued at once: every avatar with every audio track and every "
        "script, plus the videos of `jobs`, each on its own. Name assets by id, or upload files "
        "in the same (multipart) request. Scripts are checked first (text, length, voice: a "
        "400 names each problem and nothing is made) and spoken on the render queue, once "
        "each. Output options (resolution, quality, a watermark PNG in a corner) apply to "
        "every video of the batch. Files are validated in order; the first refused one stops "
        "the request (400), and the files accepted before it stay in the asset library. No "
        "batch is made unless every file is accepted.",
    )
    def post(self, request, *args, **kwargs):
        raw = plain_data(
            request_data(request),
            lists=("avatars", "audios", "avatar_files", "audio_files", "tags"),
            json_fields=("scripts", "jobs"),
        )
        body = BatchCreateSerializer(data=raw)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = self.scoped(Project, "organization", data["project"])
        avatars = self._assets(Asset.Kind.AVATAR, data["avatars"])
        audios = self._assets(Asset.Kind.AUDIO, data["audios"])
        jobs = self._job_specs(data["jobs"])
        scripts = [_script_spec(s) for s in data["scripts"]]
        with output_settings(data) as output:
            # Refuse what is cheap to check before any upload is probed and stored.
            services.parse_tags(data["tags"])
            services.engine_check(data["engine"])
            services.output_settings_check(output)
            services.scripts_check(scripts=scripts, jobs=jobs)
            avatars += self._upload(Asset.Kind.AVATAR, data["avatar_files"], "avatar_files")
            audios += self._upload(Asset.Kind.AUDIO, data["audio_files"], "audio_files")
            batch = services.batch_submit(
                membership=self.membership,
                project=project,
                avatars=avatars,
                audios=audios,
                scripts=scripts,
                jobs=jobs,
                tags=data["tags"],
                engine=data["engine"],
                name=data["name"],
                output=output,
                burn_subtitles=data["burn_subtitles"],
                meta=self.meta,
            )
        return batch_created(self, batch)


def batch_created(view: OrganizationAPIView, batch: Batch) -> Response:
    """201 with the new batch, as its detail reads it."""
    batch = _with_counts(Batch.objects.filter(pk=batch.pk)).select_related("project").get()
    context = view.get_serializer_context()
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
        return RenderJob.objects.select_related("avatar", "audio", "script__audio", "output")

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
