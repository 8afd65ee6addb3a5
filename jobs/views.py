"""Pages for projects, batches, jobs and outputs: thin views over services and selectors."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext
from django.views import View
from django.views.generic import TemplateView

from accounts.audit import RequestMeta
from accounts.tenancy import OrganizationMixin, OrganizationScopedMixin
from accounts.urlcache import url_for
from core.storage import media as storage
from jobs import selectors, services
from jobs.engines import offered_engines
from jobs.forms import BatchForm, ProjectForm
from jobs.models import Asset, Batch, Output, Project, RenderJob, batch_status_label

PROJECTS_PER_PAGE = 25
BATCHES_PER_PAGE = 25
JOBS_PER_PAGE = 50


def _messages(exc: ValidationError | PermissionDenied) -> list[str]:
    return exc.messages if isinstance(exc, ValidationError) else [str(exc)]


class ProjectListView(OrganizationScopedMixin, TemplateView):
    permission_action = "project.view"
    model = Project
    template_name = "jobs/projects.html"

    def get_base_queryset(self):
        return selectors.project_list(self.membership)

    def get_context_data(self, **kwargs):
        page = Paginator(self.get_queryset(), PROJECTS_PER_PAGE).get_page(
            self.request.GET.get("page")
        )
        kwargs.update(page=page, projects=page.object_list, query="")
        kwargs.setdefault("form", ProjectForm())
        return super().get_context_data(**kwargs)


class ProjectCreateView(OrganizationMixin, TemplateView):
    permission_action = "project.create"
    template_name = "jobs/projects.html"

    def get(self, request, org_slug):
        """The form lives on the projects page; this address only takes its POST."""
        return redirect("jobs:projects", org_slug=org_slug)

    def post(self, request, org_slug):
        form = ProjectForm(request.POST)
        if form.is_valid():
            try:
                project = services.project_create(
                    membership=self.membership,
                    meta=RequestMeta.from_request(request),
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                for field, errors in getattr(
                    exc, "error_dict", {"__all__": exc.error_list}
                ).items():
                    form.add_error(None if field in ("__all__", "organization") else field, errors)
            else:
                messages.success(request, _("Project “%(name)s” created.") % {"name": project.name})
                return redirect("jobs:project", org_slug=org_slug, pk=project.pk)
        view = ProjectListView()
        view.setup(request, org_slug=org_slug)
        view.membership, view.organization = self.membership, self.organization
        return view.render_to_response(view.get_context_data(form=form), status=400)


class ProjectDetailView(OrganizationScopedMixin, TemplateView):
    permission_action = "project.view"
    model = Project
    template_name = "jobs/project_detail.html"

    def get_context_data(self, **kwargs):
        project = self.get_scoped_object(self.kwargs["pk"])
        tag = self.request.GET.get("tag", "").strip().lower()
        page = Paginator(selectors.batch_list(self.membership, project), BATCHES_PER_PAGE).get_page(
            self.request.GET.get("page")
        )
        page.object_list = selectors.with_job_counts(page.object_list)
        kwargs.update(
            project=project,
            page=page,
            batches=page.object_list,
            query=f"tag={tag}" if tag else "",
            project_tags=selectors.project_tags(self.membership, project),
            active_tag=tag,
            tagged_outputs=selectors.tagged_outputs(self.membership, project, tag) if tag else [],
        )
        return super().get_context_data(**kwargs)


def _engines():
    return offered_engines()


class BatchCreateView(OrganizationScopedMixin, TemplateView):
    """ "New batch": choose or upload avatars, upload many audio tracks, tags, engine.

    Each uploaded file is validated on its own: refused files are listed with their reason
    while the accepted ones are kept in the library (and stay selected) for the next try.
    """

    permission_action = "batch.submit"
    model = Project
    template_name = "jobs/batch_new.html"

    def get_context_data(self, **kwargs):
        project = self.get_scoped_object(self.kwargs["pk"])
        kwargs.setdefault("form", BatchForm(engines=_engines()))
        kwargs.update(
            project=project,
            avatars=selectors.asset_list(self.membership, Asset.Kind.AVATAR)[:200],
            audios=selectors.asset_list(self.membership, Asset.Kind.AUDIO)[:500],
            chosen_avatars=set(kwargs.get("chosen_avatars", ())),
            chosen_audios=set(kwargs.get("chosen_audios", ())),
            max_mb=settings.ASSET_MAX_BYTES // 1_000_000,
        )
        return super().get_context_data(**kwargs)

    def _upload(self, kind: str, files, refused: list[str]) -> list[Asset]:
        accepted = []
        for upload in files:
            try:
                accepted.append(
                    services.asset_create(
                        membership=self.membership,
                        kind=kind,
                        upload=services.UploadedMedia(
                            Path(upload.temporary_file_path()), upload.name
                        ),
                        meta=RequestMeta.from_request(self.request),
                    )
                )
            except ValidationError as exc:
                refused.extend(exc.messages)
            finally:
                upload.close()
        return accepted

    def post(self, request, org_slug, pk):
        project = self.get_scoped_object(pk)
        form = BatchForm(request.POST, engines=_engines())
        refused: list[str] = []
        upload_error = getattr(request, "upload_error", None)
        if upload_error:
            refused.append(upload_error)
        avatars = selectors.assets_by_ids(
            self.membership, Asset.Kind.AVATAR, request.POST.getlist("avatars")
        )
        audios = selectors.assets_by_ids(
            self.membership, Asset.Kind.AUDIO, request.POST.getlist("audios")
        )
        avatars += self._upload(Asset.Kind.AVATAR, request.FILES.getlist("avatar_files"), refused)
        audios += self._upload(Asset.Kind.AUDIO, request.FILES.getlist("audio_files"), refused)
        if form.is_valid() and not refused:
            try:
                batch = services.batch_submit(
                    membership=self.membership,
                    project=project,
                    avatars=avatars,
                    audios=audios,
                    meta=RequestMeta.from_request(request),
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                refused.extend(exc.messages)
            else:
                queued = batch.jobs.count()
                messages.success(
                    request,
                    ngettext(
                        "Batch submitted: %(num)d video is queued.",
                        "Batch submitted: %(num)d videos are queued.",
                        queued,
                    )
                    % {"num": queued},
                )
                return redirect("jobs:batch", org_slug=org_slug, pk=batch.pk)
        if refused and (avatars or audios):
            refused.append(
                _(
                    "The accepted files are saved in your library and still selected below; "
                    "fix or remove the refused ones and submit again."
                )
            )
        context = self.get_context_data(
            form=form,
            refused=refused,
            chosen_avatars=[a.pk for a in avatars],
            chosen_audios=[a.pk for a in audios],
        )
        return self.render_to_response(context, status=400)


class BatchDetailView(OrganizationScopedMixin, TemplateView):
    permission_action = "project.view"
    model = Batch
    organization_lookup = "project__organization"
    template_name = "jobs/batch_detail.html"

    def get_base_queryset(self):
        return Batch.objects.select_related("project", "created_by").prefetch_related("tags")

    def get_context_data(self, **kwargs):
        batch = self.get_scoped_object(self.kwargs["pk"])
        summary = _summary(batch)
        page = _job_page(self.request, selectors.batch_job_rows(batch), summary["total"])
        kwargs.update(
            batch=batch,
            project=batch.project,
            page=page,
            jobs=page.object_list,
            summary=summary,
            query="",
        )
        return super().get_context_data(**kwargs)


def _job_page(request, jobs, total: int):
    """One page of a batch's jobs; ``total`` (the summary's count: a batch's jobs are created
    with it, all at once) spares the paginator its COUNT query."""
    paginator = Paginator(jobs, JOBS_PER_PAGE)
    paginator.count = total
    return paginator.get_page(request.GET.get("page"))


def _summary(batch: Batch) -> dict:
    """The whole batch in two small queries, whatever its size: counts per status, and the
    progress of the jobs running right now."""
    counts = dict(
        RenderJob.objects.filter(batch=batch)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in RenderJob.FINAL)
    running = RenderJob.objects.filter(batch=batch, status=RenderJob.Status.RUNNING).values_list(
        "frames_done", "frames_total"
    )
    partial = sum(min(1.0, d / t) for d, t in running if t)
    status = Batch.status_from_counts(counts)
    return {
        "status": status,
        "status_label": batch_status_label(status),
        "counts": counts,
        "percent": int(100 * (finished + partial) / total) if total else 0,
        "finished": finished,
        "total": total,
    }


class BatchStatusView(OrganizationScopedMixin, View):
    """The live state of a batch, polled by the batch page."""

    permission_action = "project.view"
    model = Batch
    organization_lookup = "project__organization"

    def get(self, request, org_slug, pk):
        batch = self.get_scoped_object(pk)
        payload = _summary(batch)
        jobs = _job_page(request, selectors.batch_job_states(batch), payload["total"]).object_list
        payload["jobs"] = [
            {
                "id": j.pk,
                "status": j.status,
                "status_label": j.get_status_display(),
                "percent": j.percent,
                "frames_done": j.frames_done,
                "frames_total": j.frames_total,
                "attempts": j.attempts,
                "error": j.error_text,
                "output": _output_json(org_slug, j) if j.status == "succeeded" else None,
            }
            for j in jobs
        ]
        return JsonResponse(payload)


def _output_json(org_slug: str, job: RenderJob) -> dict | None:
    output = getattr(job, "output", None)
    if output is None:
        return None
    return {
        "id": output.pk,
        "name": output.name,
        "bytes": output.bytes,
        "size": filesizeformat(output.bytes),  # as the page writes it, in its language
        "duration": output.duration,
        "download": url_for("jobs:output_download", org_slug, output.pk),
        "play": url_for("jobs:output_play", org_slug, output.pk),
        "thumbnail": url_for("jobs:output_thumbnail", org_slug, output.pk),
    }


class _PostAction(OrganizationScopedMixin, View):
    """POST-only action on one scoped object; the outcome is flashed on the batch page."""

    service = None
    arg = ""
    success = ""

    def post(self, request, org_slug, pk):
        obj = self.get_scoped_object(pk)
        try:
            type(self).service(
                membership=self.membership,
                meta=RequestMeta.from_request(request),
                **{self.arg: obj},
            )
        except ValidationError as exc:
            for text in _messages(exc):
                messages.error(request, text)
        else:
            messages.success(request, self.success)
        batch_id = obj.pk if isinstance(obj, Batch) else obj.batch_id
        return redirect("jobs:batch", org_slug=org_slug, pk=batch_id)


class BatchCancelView(_PostAction):
    permission_action = "batch.cancel"
    model = Batch
    organization_lookup = "project__organization"
    service = services.batch_cancel
    arg = "batch"
    success = gettext_lazy(
        "Batch canceled: queued videos will not start, running ones stop shortly."
    )


class JobCancelView(_PostAction):
    permission_action = "job.cancel"
    model = RenderJob
    organization_lookup = "batch__project__organization"
    service = services.job_cancel
    arg = "job"
    success = gettext_lazy("Job canceled.")


class JobRetryView(_PostAction):
    permission_action = "job.retry"
    model = RenderJob
    organization_lookup = "batch__project__organization"
    service = services.job_retry
    arg = "job"
    success = gettext_lazy("Job queued again.")


class _OutputFileView(OrganizationScopedMixin, View):
    permission_action = "output.download"
    model = Output
    organization_lookup = "job__batch__project__organization"
    attachment = True

    def get(self, request, org_slug, pk):
        output = self.get_scoped_object(pk)
        name = self.file_name(output)
        if not name:
            raise Http404(_("No such file."))
        return storage.serve(
            request,
            name,
            content_type=self.content_type,
            filename=self.download_name(output),
            attachment=self.attachment,
        )

    def file_name(self, output: Output) -> str:
        return output.file.name

    def download_name(self, output: Output) -> str:
        return output.name


class OutputDownloadView(_OutputFileView):
    content_type = "video/mp4"


class OutputPlayView(_OutputFileView):
    content_type = "video/mp4"
    attachment = False


class OutputThumbnailView(_OutputFileView):
    content_type = "image/jpeg"
    attachment = False

    def file_name(self, output: Output) -> str:
        return output.thumbnail.name

    def download_name(self, output: Output) -> str:
        return Path(output.name).stem + ".jpg"


class AssetUploadView(OrganizationMixin, View):
    """Upload one file (avatar or audio) and answer in JSON: the page's drag-and-drop
    uploader sends files one by one, so each gets its own progress and its own verdict."""

    permission_action = "asset.upload"

    def post(self, request, org_slug):
        kind = request.POST.get("kind", "")
        upload_error = getattr(request, "upload_error", None)
        if upload_error:
            return JsonResponse({"error": upload_error}, status=413)
        files = request.FILES.getlist("file")
        if len(files) != 1:
            return JsonResponse(
                {"error": _("Send exactly one file in the field “file”.")}, status=400
            )
        upload = files[0]
        try:
            asset = services.asset_create(
                membership=self.membership,
                kind=kind,
                upload=services.UploadedMedia(Path(upload.temporary_file_path()), upload.name),
                meta=RequestMeta.from_request(request),
            )
        except ValidationError as exc:
            return JsonResponse({"error": " ".join(exc.messages)}, status=400)
        finally:
            upload.close()
        return JsonResponse(
            {
                "id": asset.pk,
                "kind": asset.kind,
                "name": asset.original_name,
                "duration": asset.duration,
                "bytes": asset.bytes,
                "width": asset.width,
                "height": asset.height,
                # The page's word for a file that passed every check.
                "verdict": pgettext("upload verdict", "accepted"),
            },
            status=201,
        )
