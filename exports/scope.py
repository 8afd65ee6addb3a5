"""What a bundle holds: the scope of an export, its outputs, and their names inside the ZIP."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from accounts.models import Membership
from core.names import without_invisible
from exports.models import VIDEO_EXTENSIONS, Export
from jobs.models import Batch, Output, Project, RenderJob
from jobs.services import parse_tags

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}  # fmt: skip


@dataclass(frozen=True)
class Scope:
    kind: str
    project: Project | None = None
    batch: Batch | None = None
    tags: tuple[str, ...] = ()
    output_ids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        if self.kind == Export.Scope.BATCH:
            return f"batch:{self.batch.pk}"
        if self.kind == Export.Scope.PROJECT:
            return f"project:{self.project.pk}"
        if self.kind == Export.Scope.TAGS:
            where = f"project:{self.project.pk};" if self.project else ""
            return f"{where}tags:{','.join(self.tags)}"
        return "outputs:" + ",".join(map(str, self.output_ids))

    @property
    def label(self) -> str:
        """What the bundle holds, for people, in the active language (stored with the export:
        the requester's language)."""
        if self.kind == Export.Scope.BATCH:
            return f"{self.batch.project.name} › {self.batch}"
        if self.kind == Export.Scope.PROJECT:
            return _("Project %(name)s") % {"name": self.project.name}
        if self.kind == Export.Scope.TAGS:
            tags = pgettext("joins tag names: any of them", " or ").join(self.tags)
            if self.project:
                return _("%(project)s, tagged %(tags)s") % {
                    "project": self.project.name,
                    "tags": tags,
                }
            return _("Tagged %(tags)s") % {"tags": tags}
        count = len(self.output_ids)
        return ngettext("%(num)d chosen video", "%(num)d chosen videos", count) % {"num": count}

    def export_fields(self) -> dict:
        return {
            "scope": self.kind,
            "scope_key": self.key[:1000],
            "project": self.project or (self.batch.project if self.batch else None),
            "batch": self.batch,
            "tags": list(self.tags),
            "output_ids": list(self.output_ids),
            "label": self.label[:255],
        }


def scope_from_params(membership: Membership, params: Mapping) -> Scope:
    """Read a scope from request parameters (batch= | project= [tag=…] | tag=… | output=…).

    Objects of other organizations are reported exactly like missing ones.
    """
    org = membership.organization_id

    def ids(name: str) -> list[int]:
        values = params.getlist(name) if hasattr(params, "getlist") else params.get(name, [])
        if isinstance(values, (str, int)):
            values = [values]
        try:
            return [int(v) for v in values if str(v).strip()]
        except ValueError as exc:
            raise ValidationError(
                _("%(name)s must be a number.") % {"name": name}, code="invalid"
            ) from exc

    batch_ids, project_ids, output_ids = ids("batch"), ids("project"), ids("output")
    raw_tags = params.getlist("tag") if hasattr(params, "getlist") else params.get("tag", [])
    tags = tuple(sorted(parse_tags(raw_tags if not isinstance(raw_tags, str) else [raw_tags])))
    if batch_ids:
        batch = (
            Batch.objects.select_related("project")
            .filter(pk=batch_ids[0], project__organization=org)
            .first()
        )
        if batch is None:
            raise ValidationError(_("That batch does not exist."), code="not_found")
        return Scope(Export.Scope.BATCH, batch=batch)
    project = None
    if project_ids:
        project = Project.objects.filter(pk=project_ids[0], organization=org).first()
        if project is None:
            raise ValidationError(_("That project does not exist."), code="not_found")
    if tags:
        return Scope(Export.Scope.TAGS, project=project, tags=tags)
    if project:
        return Scope(Export.Scope.PROJECT, project=project)
    if output_ids:
        found = set(
            Output.objects.filter(
                pk__in=output_ids, job__batch__project__organization=org
            ).values_list("pk", flat=True)
        )
        if len(found) != len(set(output_ids)):
            raise ValidationError(_("Some of the chosen videos do not exist."), code="not_found")
        return Scope(Export.Scope.OUTPUTS, output_ids=tuple(sorted(found)))
    raise ValidationError(
        _("Say what to pack: a batch, a project, tags or chosen videos."), code="required"
    )


def scope_from_export(export: Export) -> Scope:
    return Scope(
        kind=export.scope,
        project=export.project,
        batch=export.batch,
        tags=tuple(export.tags),
        output_ids=tuple(export.output_ids),
    )


def scope_outputs(organization_id: int, scope: Scope) -> QuerySet[Output]:
    """The finished videos a scope holds, in a stable order."""
    outputs = Output.objects.filter(
        job__batch__project__organization=organization_id,
        job__status=RenderJob.Status.SUCCEEDED,
    )
    video = Q()
    for ext in VIDEO_EXTENSIONS:
        video |= Q(file__iendswith=ext)
    outputs = outputs.filter(video)
    if scope.kind == Export.Scope.BATCH:
        outputs = outputs.filter(job__batch=scope.batch)
    elif scope.kind == Export.Scope.PROJECT:
        outputs = outputs.filter(job__batch__project=scope.project)
    elif scope.kind == Export.Scope.TAGS:
        if scope.project:
            outputs = outputs.filter(job__batch__project=scope.project)
        outputs = outputs.filter(job__batch__tags__name__in=scope.tags).distinct()
    else:
        outputs = outputs.filter(pk__in=scope.output_ids)
    return outputs.order_by("job__batch__project_id", "job__batch_id", "job_id")


def scope_totals(organization_id: int, scope: Scope) -> tuple[int, int]:
    """(video count, total bytes of the videos and their subtitle files) from the rows alone:
    no file is read."""
    ids = scope_outputs(organization_id, scope).values("pk")
    totals = Output.objects.filter(pk__in=ids).aggregate(
        n=Count("pk"), size=Sum("bytes"), subtitles=Sum("subtitles_bytes")
    )
    return totals["n"] or 0, (totals["size"] or 0) + (totals["subtitles"] or 0)


def fingerprint(outputs: Iterable[Output]) -> str:
    """What a bundle's files are, as one SHA-256: each output's id, name, size and checksum
    (and its subtitles'), in id order. Two bundles of one scope with the same fingerprint
    hold the same videos under the same names; a re-render, an added or removed video or a
    renamed one changes it. Read from the rows: no file is opened."""
    digest = hashlib.sha256()
    for output in sorted(outputs, key=lambda o: o.pk):
        line = "\t".join(
            str(value)
            for value in (
                output.pk,
                output.name,
                output.bytes,
                output.sha256,
                output.subtitles_bytes or 0,
                output.subtitles_sha256 or "",
            )
        )
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def scope_fingerprint(organization_id: int, scope: Scope) -> str:
    """The fingerprint of the videos ``scope`` holds now."""
    return fingerprint(
        scope_outputs(organization_id, scope).only(
            "pk", "name", "bytes", "sha256", "subtitles_bytes", "subtitles_sha256"
        )
    )


#: the longest bundle file name, in UTF-8 bytes: well under the 255 of common file systems,
#: with room for the temp name a build writes first
FILENAME_MAX_BYTES = 180
_NAME_PART_BYTES = 60


def _capped(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary, without the
    dots and spaces a cut may leave at the end (Windows drops them)."""
    while len(text.encode()) > limit:
        text = text[:-1]
    return text.rstrip(" .")


def bundle_file_stem(scope: Scope, fallback: str) -> str:
    """The first part of a bundle's file name: what it holds, by name, with a word for the
    kind of scope in the active language (the requester's). Each part is made safe for
    Windows, macOS and Linux; Chinese and other scripts are kept."""
    sep = "_"

    def part(text: str) -> str:
        return _capped(safe_component(text, ""), _NAME_PART_BYTES)

    if scope.kind == Export.Scope.BATCH and scope.batch is not None:
        parts = [
            part(scope.batch.project.name),
            pgettext("in a bundle's file name", "batch"),
            part(str(scope.batch)),
        ]
    elif scope.kind == Export.Scope.PROJECT and scope.project is not None:
        parts = [part(scope.project.name), pgettext("in a bundle's file name", "project")]
    elif scope.kind == Export.Scope.TAGS and scope.tags:
        parts = [
            part(scope.project.name) if scope.project else "",
            pgettext("in a bundle's file name", "tag"),
            part("+".join(scope.tags)),
        ]
    elif scope.kind == Export.Scope.OUTPUTS:
        count = len(scope.output_ids)
        parts = [ngettext("%(num)d chosen video", "%(num)d chosen videos", count) % {"num": count}]
    else:  # the batch or project was deleted since: the stored label still says what it was
        parts = [part(fallback)]
    stem = sep.join(p for p in parts if p)
    return _capped(safe_component(stem, ""), FILENAME_MAX_BYTES - 40) or "bundle"


def safe_component(text: str, fallback: str = "untitled") -> str:
    """One path component that is safe on Windows, macOS and Linux and keeps its meaning."""
    text = unicodedata.normalize("NFC", text or "")
    text = without_invisible(_UNSAFE.sub("_", text))
    text = re.sub(r"\s+", " ", text).strip(" .")
    text = text.lstrip(".") or fallback
    if PurePosixPath(text).stem.lower() in _WINDOWS_RESERVED:
        text = "_" + text
    if len(text.encode()) > 200:
        stem, dot, ext = text.rpartition(".")
        if not dot or len(ext.encode()) > 20:  # no extension to keep (rpartition: ext=text)
            stem, dot, ext = text, "", ""
        while len((stem + dot + ext).encode()) > 200:
            stem = stem[:-1]
        text = stem.rstrip(" .") + dot + ext
    return text


def _unique(name: str, taken: set[str], companions: tuple[str, ...] = ()) -> str:
    """``name`` or ``name (2)``, ``name (3)``… — unique even on case-insensitive systems,
    together with its ``companions`` (other extensions of the same stem, such as a video's
    ``.srt``), which are taken with it."""
    stem, dot, ext = name.rpartition(".") if "." in PurePosixPath(name).name else (name, "", "")
    n = 1
    while True:
        base = stem if n == 1 else f"{stem} ({n})"
        names = [f"{base}{dot}{ext}", *(base + companion for companion in companions)]
        if not any(other.lower() in taken for other in names):
            taken.update(other.lower() for other in names)
            return names[0]
        n += 1


@dataclass(frozen=True)
class BundleItem:
    """One video of a bundle: its path inside the ZIP, and its subtitles' path (the same
    stem, ``.srt``) when it has subtitles."""

    output: Output
    path: str
    subtitles_path: str | None = None


def bundle_names(scope: Scope, outputs: Iterable[Output]) -> list[BundleItem]:
    """Each output with its path inside the ZIP, relative to the scope, sanitised, unique (its
    subtitle file beside it, under the same unique stem)."""
    taken: set[str] = {"manifest.csv"}
    named = []
    for output in outputs:
        batch = output.job.batch
        parts = []
        if scope.kind in (Export.Scope.OUTPUTS,) or (
            scope.kind == Export.Scope.TAGS and not scope.project
        ):
            parts.append(safe_component(batch.project.name, f"project_{batch.project_id}"))
        if scope.kind != Export.Scope.BATCH:
            parts.append(safe_component(str(batch), f"batch_{batch.pk}"))
        parts.append(safe_component(output.name, f"video_{output.pk}.mp4"))
        companions = (".srt",) if output.subtitles else ()
        path = _unique("/".join(parts), taken, companions)
        subtitles = None
        if companions:
            stem = path.rpartition(".")[0] if "." in PurePosixPath(path).name else path
            subtitles = stem + ".srt"
        named.append(BundleItem(output, path, subtitles))
    return named
