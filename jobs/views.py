"""Pages for projects, batches, jobs and outputs: thin views over services and selectors."""

from __future__ import annotations

import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.generic import TemplateView

from accounts.audit import RequestMeta
from accounts.tenancy import OrganizationMixin, OrganizationScopedMixin
from accounts.urlcache import url_for
from core.http import content_disposition
from core.storage import media as storage
from jobs import selectors, services
from jobs.engines import offered_engines
from jobs.forms import (
    BatchForm,
    OutputOptionsForm,
    ProjectForm,
    ScriptOptionsForm,
    SheetOutputOptionsForm,
    SheetUploadForm,
)
from jobs.library_views import one_file, store_upload
from jobs.models import Asset, Batch, Output, Project, RenderJob, batch_status_label
from jobs.services.pages import attach_subtitles_by_name, is_subtitle_file
from jobs.sheets import COLUMN_HELP, MAX_SHEET_BYTES, TEMPLATE_HEADERS, template_xlsx

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
        tagged = selectors.tagged_outputs(self.membership, project, tag) if tag else []
        kwargs.update(
            project=project,
            page=page,
            batches=page.object_list,
            query=f"tag={tag}" if tag else "",
            project_tags=selectors.project_tags(self.membership, project),
            active_tag=tag,
            tagged_outputs=tagged,
            result_titles={o.pk: _result_title(o.job) for o in tagged},
        )
        return super().get_context_data(**kwargs)


def _engines():
    return offered_engines()


class BatchCreateView(OrganizationScopedMixin, TemplateView):
    """ "New batch": choose or upload avatars, upload many audio tracks (with their SRT files),
    write scripts, choose a voice and the output options.

    Scripts are checked before any file is stored. Each uploaded file is validated on its own:
    refused files are listed with their reason while the accepted ones are kept in the library
    (and stay selected) for the next try.
    """

    permission_action = "batch.submit"
    model = Project
    template_name = "jobs/batch_new.html"

    def get_context_data(self, **kwargs):
        project = self.get_scoped_object(self.kwargs["pk"])
        voices = kwargs.pop("voices", None) or services.voices_for(self.organization)
        kwargs.setdefault("form", BatchForm(engines=_engines()))
        kwargs.setdefault("script_form", ScriptOptionsForm(voices=voices))
        kwargs.setdefault("output_form", OutputOptionsForm())
        kwargs.setdefault("scripts", [""])
        kwargs.setdefault("field_errors", {})
        kwargs.update(
            project=project,
            avatars=selectors.asset_list(self.membership, Asset.Kind.AVATAR)[:200],
            audios=selectors.asset_list(self.membership, Asset.Kind.AUDIO)[:500],
            chosen_avatars=set(kwargs.get("chosen_avatars", ())),
            chosen_audios=set(kwargs.get("chosen_audios", ())),
            max_mb=settings.ASSET_MAX_BYTES // 1_000_000,
            max_script=settings.TTS_MAX_CHARS,
        )
        return super().get_context_data(**kwargs)

    def _upload(self, kind: str, files, refused: list[str]) -> list[Asset]:
        accepted = []
        for upload in files:
            try:
                accepted.append(store_upload(self.request, self.membership, kind, upload))
            except ValidationError as exc:
                refused.extend(exc.messages)
        return accepted

    def _attach_subtitles(self, files, audios: list[Asset], refused: list[str]) -> list[Asset]:
        """SRT files chosen with the audio tracks, attached to the track of the same name."""
        from inference.subtitles import MAX_SUBTITLE_BYTES

        contents = []
        for upload in files:
            try:
                contents.append((upload.name, upload.read(MAX_SUBTITLE_BYTES + 1)))
            finally:
                upload.close()
        verdicts = attach_subtitles_by_name(
            membership=self.membership,
            audios=audios,
            files=contents,
            meta=RequestMeta.from_request(self.request),
        )
        attached = {v.audio.pk: v.audio for v in verdicts if v.audio is not None}
        refused.extend(v.error for v in verdicts if v.error)
        return [attached.get(a.pk, a) for a in audios]

    def post(self, request, org_slug, pk):
        project = self.get_scoped_object(pk)
        voices = services.voices_for(self.organization)
        form = BatchForm(request.POST, engines=_engines())
        script_form = ScriptOptionsForm(request.POST, voices=voices)
        output_form = OutputOptionsForm(request.POST, request.FILES)
        texts = [t for t in request.POST.getlist("scripts") if t.strip()]
        refused: list[str] = []
        field_errors: dict[str, list[str]] = {}
        upload_error = getattr(request, "upload_error", None)
        if upload_error:
            refused.append(upload_error)
        avatars = selectors.assets_by_ids(
            self.membership, Asset.Kind.AVATAR, request.POST.getlist("avatars")
        )
        audios = selectors.assets_by_ids(
            self.membership, Asset.Kind.AUDIO, request.POST.getlist("audios")
        )
        forms_ok = all(f.is_valid() for f in (form, script_form, output_form))
        scripts = []
        if script_form.is_valid():
            options = script_form.cleaned_data
            scripts = [
                services.ScriptSpec(
                    text=t, voice=options["voice"], rate=options["rate"], pitch=options["pitch"]
                )
                for t in texts
            ]
            try:  # before any file is stored: a bad script leaves nothing behind
                services.scripts_check(scripts=scripts)
            except ValidationError as exc:
                _place_errors(exc, (form, script_form, output_form), field_errors)
        if forms_ok and not field_errors:
            avatars += self._upload(
                Asset.Kind.AVATAR, request.FILES.getlist("avatar_files"), refused
            )
            files = request.FILES.getlist("audio_files")
            audios += self._upload(
                Asset.Kind.AUDIO, [f for f in files if not is_subtitle_file(f.name)], refused
            )
            subtitles = [f for f in files if is_subtitle_file(f.name)]
            if subtitles:
                audios = self._attach_subtitles(subtitles, audios, refused)
        if forms_ok and not field_errors and not refused:
            try:
                with _output_settings(output_form.cleaned_data) as output:
                    batch = services.batch_submit(
                        membership=self.membership,
                        project=project,
                        avatars=avatars,
                        audios=audios,
                        scripts=scripts,
                        output=output,
                        burn_subtitles=output_form.cleaned_data["burn_subtitles"],
                        meta=RequestMeta.from_request(request),
                        **form.cleaned_data,
                    )
            except ValidationError as exc:
                _place_errors(exc, (form, script_form, output_form), field_errors)
            else:
                return _submitted(request, org_slug, batch)
        if refused and (avatars or audios):
            refused.append(
                _(
                    "The accepted files are saved in your library and still selected below; "
                    "fix or remove the refused ones and submit again."
                )
            )
        context = self.get_context_data(
            form=form,
            script_form=script_form,
            output_form=output_form,
            voices=voices,
            scripts=texts or [""],
            refused=refused,
            field_errors=field_errors,
            chosen_avatars=[a.pk for a in avatars],
            chosen_audios=[a.pk for a in audios],
        )
        return self.render_to_response(context, status=400)


def _submitted(request, org_slug: str, batch: Batch):
    """After a batch is submitted (the form or a sheet): say how many videos are queued and
    open the batch's page."""
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


def _place_errors(exc: ValidationError, forms, field_errors: dict[str, list[str]]) -> None:
    """A service's refusal shown where it belongs: on the form field it names, else in the
    page's own places (``avatars``, ``audios``, ``scripts``, ``burn_subtitles``; the rest at
    the top)."""
    named = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    for name, texts in named.items():
        form = next((f for f in forms if name in f.fields), None)
        if form is not None and name != "burn_subtitles":
            form.add_error(name, texts)
        else:
            field_errors.setdefault(name, []).extend(texts)


@contextmanager
def _output_settings(data: dict):
    """The output options as the service takes them, the watermark upload as a file on disk
    while the block runs."""
    common = {
        "resolution": data["resolution"],
        "quality": data["quality"],
        "watermark_corner": data["watermark_corner"],
        "watermark_opacity": data["watermark_opacity"],
    }
    upload = data.get("watermark")
    if upload is None:
        yield services.OutputSettings(**common)
        return
    try:
        if hasattr(upload, "temporary_file_path"):
            yield services.OutputSettings(watermark=Path(upload.temporary_file_path()), **common)
            return
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "watermark.png"
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            yield services.OutputSettings(watermark=path, **common)
    finally:
        upload.close()


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
        page = _job_page(self.request, selectors.batch_page_rows(batch), summary["total"])
        kwargs.update(
            batch=batch,
            project=batch.project,
            page=page,
            jobs=page.object_list,
            summary=summary,
            query="",
            voice_names=_voice_names(self.organization, page.object_list),
            result_titles={
                j.pk: _result_title(j) for j in page.object_list if j.status == "succeeded"
            },
        )
        return super().get_context_data(**kwargs)


def _voice_names(organization, jobs) -> dict[str, str]:
    """The voices' names in the reader's language, when the page shows scripts."""
    if not any(j.script_id for j in jobs):
        return {}
    return {v.id: v.name for v in services.voices_for(organization)}


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
        jobs = _job_page(request, selectors.batch_page_states(batch), payload["total"]).object_list
        payload["jobs"] = [
            {
                "id": j.pk,
                "number": j.number,
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


def _result_title(job: RenderJob) -> str:
    """A result's title in the player: the avatar and the audio it speaks, or the first words
    of its script (the job's avatar, audio and script are loaded with it)."""
    spoken = job.script.excerpt if job.script_id else job.audio.original_name
    return f"{job.avatar.original_name} · {spoken}"


def _output_json(org_slug: str, job: RenderJob) -> dict | None:
    output = getattr(job, "output", None)
    if output is None:
        return None
    return {
        "id": output.pk,
        "number": job.number,  # the job's, 1..N in its batch: the order of the results
        "title": _result_title(job),
        "name": output.name,
        "bytes": output.bytes,
        "size": filesizeformat(output.bytes),  # as the page writes it, in its language
        "duration": output.duration,
        "download": url_for("jobs:output_download", org_slug, output.pk),
        "play": url_for("jobs:output_play", org_slug, output.pk),
        "thumbnail": url_for("jobs:output_thumbnail", org_slug, output.pk),
        "vtt": url_for("jobs:output_vtt", org_slug, output.pk) if output.subtitles else None,
        "srt": url_for("jobs:output_srt", org_slug, output.pk) if output.subtitles else None,
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


class OutputSrtView(_OutputFileView):
    """The video's subtitles as the SRT file shipped beside it in bundles."""

    content_type = "application/x-subrip; charset=utf-8"

    def file_name(self, output: Output) -> str:
        return output.subtitles.name

    def download_name(self, output: Output) -> str:
        return Path(output.name).stem + ".srt"


class OutputVttView(_OutputFileView):
    """The video's subtitles as WebVTT, for the page's player (made from the stored SRT)."""

    def get(self, request, org_slug, pk):
        output = self.get_scoped_object(pk)
        try:
            text = services.output_subtitles(output, "vtt")
        except FileNotFoundError as exc:
            raise Http404(_("No such file.")) from exc
        return HttpResponse(text.encode("utf-8"), content_type="text/vtt; charset=utf-8")


class SubtitleAttachView(OrganizationScopedMixin, View):
    """Attach an SRT file to an audio track of the library and answer in JSON: the new-batch
    page sends the SRT chosen beside an audio upload once that audio is accepted."""

    permission_action = "asset.upload"
    model = Asset

    def post(self, request, org_slug, pk):
        from inference.subtitles import MAX_SUBTITLE_BYTES

        asset = self.get_scoped_object(pk)
        upload, refusal = one_file(request)
        if refusal is not None:
            return refusal
        try:
            data = upload.read(MAX_SUBTITLE_BYTES + 1)
        finally:
            upload.close()
        try:
            asset = services.asset_attach_subtitles(
                membership=self.membership,
                asset=asset,
                data=data,
                filename=upload.name,
                meta=RequestMeta.from_request(request),
            )
        except ValidationError as exc:
            return JsonResponse({"error": " ".join(exc.messages)}, status=400)
        return JsonResponse(
            {
                "id": asset.pk,
                "verdict": _("subtitles attached to %(name)s") % {"name": asset.original_name},
            },
            status=201,
        )


# --- sheet imports -----------------------------------------------------------------------------

#: How long an uploaded sheet waits for its "Submit" between preview and confirm, seconds.
SHEET_KEEP_S = 3600


def _sheet_key(membership, token: str) -> str:
    # Bound to the person and the organization: a token seen by anyone else is worth nothing.
    return f"heygem:sheet-import:{membership.organization_id}:{membership.user_id}:{token}"


class SheetImportView(OrganizationScopedMixin, TemplateView):
    """Import a sheet: upload it, see each row's verdict, then submit it.

    The uploaded file is kept on the server (the cache, :data:`SHEET_KEEP_S`) under a random
    token bound to this person and organization; the page carries only the token. The confirm
    step reads the stored file again and the service checks every row again, so nothing the
    browser sends back about the rows is trusted.
    """

    permission_action = "batch.submit"
    model = Project
    template_name = "jobs/sheet_import.html"

    def get_context_data(self, **kwargs):
        project = self.get_scoped_object(self.kwargs["pk"])
        kwargs.setdefault("form", SheetUploadForm())
        # The batch's name, engine, tags and output options, asked with the Submit button.
        kwargs.setdefault("batch_form", BatchForm(engines=_engines()))
        kwargs.setdefault("output_form", SheetOutputOptionsForm())
        verdicts = kwargs.get("verdicts") or []
        kwargs.update(
            project=project,
            columns=list(zip(TEMPLATE_HEADERS, COLUMN_HELP.values(), strict=True)),
            good=sum(v.ok for v in verdicts),
            bad=sum(not v.ok for v in verdicts),
        )
        return super().get_context_data(**kwargs)

    def post(self, request, org_slug, pk):
        self.get_scoped_object(pk)
        form = SheetUploadForm(request.POST, request.FILES)
        upload_error = getattr(request, "upload_error", None)
        if upload_error:
            form.add_error("file", upload_error)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        upload = form.cleaned_data["file"]
        try:
            data = upload.read(MAX_SHEET_BYTES + 1)
        finally:
            upload.close()
        filename = services.display_name(upload.name, "sheet")
        try:
            rows = services.sheet_read(filename=filename, data=data)
        except ValidationError as exc:
            form.add_error("file", exc.messages)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        verdicts = services.sheet_check(membership=self.membership, rows=rows)
        token = secrets.token_urlsafe(24)
        cache.set(
            _sheet_key(self.membership, token), {"name": filename, "data": data}, SHEET_KEEP_S
        )
        context = self.get_context_data(
            verdicts=verdicts, token=token, filename=filename, form=SheetUploadForm()
        )
        return self.render_to_response(context, status=200 if rows else 400)


class SheetSubmitView(SheetImportView):
    """The confirm step: the stored sheet checked again and submitted, or every row's error."""

    def get(self, request, org_slug, pk):
        self.get_scoped_object(pk)  # someone else's project: 404, as everywhere
        return redirect("jobs:sheet_import", org_slug=org_slug, pk=pk)

    def post(self, request, org_slug, pk):
        project = self.get_scoped_object(pk)
        token = request.POST.get("token", "")
        stored = cache.get(_sheet_key(self.membership, token)) if token else None
        if stored is None:
            refusal = _("The uploaded sheet is no longer kept here; please upload it again.")
            return self.render_to_response(self.get_context_data(refusal=refusal), status=400)
        rows = services.sheet_read(filename=stored["name"], data=stored["data"])
        engines = _engines()
        data = request.POST.copy()
        if engines and not data.get("engine"):  # posted without the options: the defaults
            data["engine"] = engines[0].name
        batch_form = BatchForm(data, engines=engines)
        output_form = SheetOutputOptionsForm(data, request.FILES)
        if not (batch_form.is_valid() and output_form.is_valid()):
            context = self.get_context_data(
                verdicts=services.sheet_check(membership=self.membership, rows=rows),
                token=token,
                filename=stored["name"],
                batch_form=batch_form,
                output_form=output_form,
            )
            return self.render_to_response(context, status=400)
        try:
            with _output_settings(output_form.cleaned_data) as output:
                batch = services.sheet_submit(
                    membership=self.membership,
                    project=project,
                    rows=rows,
                    engine=batch_form.cleaned_data["engine"],
                    name=batch_form.cleaned_data["name"],
                    tags=batch_form.cleaned_data["tags"],
                    output=output,
                    filename=stored["name"],
                    meta=RequestMeta.from_request(request),
                )
        except services.SheetRefused as refused:
            context = self.get_context_data(
                verdicts=refused.verdicts,
                token=token,
                filename=stored["name"],
                batch_form=batch_form,
                output_form=output_form,
                refusal=refused.summary,
            )
            return self.render_to_response(context, status=400)
        except ValidationError as exc:
            # The options (a watermark that is not a PNG, an unknown tag…): under their fields,
            # with the rows' verdicts, so the person corrects them and submits again.
            field_errors: dict[str, list[str]] = {}
            _place_errors(exc, (batch_form, output_form), field_errors)
            context = self.get_context_data(
                verdicts=services.sheet_check(membership=self.membership, rows=rows),
                token=token,
                filename=stored["name"],
                batch_form=batch_form,
                output_form=output_form,
                refusal=" ".join(m for texts in field_errors.values() for m in texts),
            )
            return self.render_to_response(context, status=400)
        cache.delete(_sheet_key(self.membership, token))
        return _submitted(request, org_slug, batch)


class SheetTemplateView(OrganizationMixin, View):
    """The template sheet (.xlsx): the columns, two example rows and a help sheet."""

    permission_action = "project.view"

    def get(self, request, org_slug):
        response = HttpResponse(
            template_xlsx(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = content_disposition("heygem_batch_sheet.xlsx")
        return response
