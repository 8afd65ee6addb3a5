"""``python -m heygem_client``: submit a folder of audio tracks, follow batches, fetch and
verify bundles.

Exit codes: 0 done; 1 the work failed (some videos failed, the bundle could not be built);
2 a usage, configuration or API error; 3 the downloaded bundle does not match its manifest.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from heygem_client import __version__
from heygem_client.bundle import verify_bundle
from heygem_client.http import ApiError, Client
from heygem_client.i18n import _, argparse_speaks, gettext_noop, ngettext
from heygem_client.progress import ProgressBar, human_bytes

AUDIO_EXTENSIONS = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".mka"}
BATCH_FINAL = {"succeeded", "failed", "canceled", "partial", "empty"}
EXPORT_FINAL = {"ready", "failed", "expired"}
#: the server's status codes of batches, jobs and bundles, in the words of the pages
STATUS_WORDS = {
    "queued": gettext_noop("queued"),
    "running": gettext_noop("running"),
    "succeeded": gettext_noop("succeeded"),
    "failed": gettext_noop("failed"),
    "canceled": gettext_noop("canceled"),
    "partial": gettext_noop("partial"),
    "empty": gettext_noop("empty"),
    "building": gettext_noop("building"),
    "ready": gettext_noop("ready"),
    "expired": gettext_noop("expired"),
}


def status_word(code: str) -> str:
    """A status code as a person reads it (an unknown code as it is)."""
    return _(STATUS_WORDS[code]) if code in STATUS_WORDS else code


class Failure(Exception):
    """Stop with a message and an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class Command:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO, sleep=time.sleep):
        self.args, self.out, self.err, self.sleep = args, out, err, sleep
        token = args.token or os.environ.get("HEYGEM_TOKEN", "")
        org = args.org or os.environ.get("HEYGEM_ORG", "")
        url = args.url or os.environ.get("HEYGEM_URL", "") or "http://127.0.0.1:8000"
        if not token:
            raise Failure(_("No API token: pass --token or set HEYGEM_TOKEN."))
        if not org:
            raise Failure(
                _("No organization: pass --org or set HEYGEM_ORG (its address, e.g. acme).")
            )
        self.client = Client(url, token, org, sleep=sleep)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- shared steps ---

    def find_project(self, name: str) -> dict | None:
        found = self.client.get("projects/", name=name)["results"]
        if found:
            return found[0]
        if name.isdigit():
            try:
                return self.client.get(f"projects/{int(name)}/")
            except ApiError as exc:
                if exc.status != 404:
                    raise
        return None

    def upload(self, kind: str, path: Path) -> dict:
        bar = ProgressBar(_("upload %(name)s") % {"name": path.name}, self.err)
        asset = self.client.upload(
            "assets/",
            {"kind": kind},
            [("file", path, path.name)],
            progress=lambda sent, total: bar.update(sent / total if total else 1.0),
        )
        if asset.get("reused"):  # the same bytes were in the library: nothing new stored
            bar.done(_("already in the library as “%(name)s”") % {"name": asset["name"]})
        else:
            bar.done(
                _("%(size)s, %(seconds)s s")
                % {"size": human_bytes(asset["bytes"]), "seconds": f"{asset['duration']:.1f}"}
            )
        return asset

    def wait(self, path: str, final: set[str], show: Callable[[dict, ProgressBar], None]) -> dict:
        bar = ProgressBar("", self.err)
        while True:
            state = self.client.get(path)
            show(state, bar)
            if state["status"] in final:
                if bar.tty:
                    self.err.write("\n")
                return state
            self.sleep(self.args.interval)

    # --- submit ---

    def submit(self) -> int:
        if self.args.sheet:
            return self.submit_sheet()
        avatar = Path(self.args.avatar)
        folder = Path(self.args.audio_dir)
        if not avatar.is_file():
            raise Failure(_("The avatar video %(path)s does not exist.") % {"path": avatar})
        if not folder.is_dir():
            raise Failure(_("The audio folder %(path)s does not exist.") % {"path": folder})
        audios = sorted(
            p for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS
        )  # fmt: skip
        if not audios:
            raise Failure(
                _("No audio files in %(folder)s (looked for %(extensions)s).")
                % {"folder": folder, "extensions": ", ".join(sorted(AUDIO_EXTENSIONS))}
            )
        project = self.find_project(self.args.project)
        if project is None:
            project = self.client.post("projects/", {"name": self.args.project})
            self.say(
                _("Created project “%(name)s” (#%(id)s).")
                % {"name": project["name"], "id": project["id"]}
            )
        uploaded = [self.upload("avatar", avatar)]
        uploaded += [self.upload("audio", path) for path in audios]
        body: dict[str, Any] = {
            "project": project["id"],
            "avatars": [uploaded[0]["id"]],
            "audios": [a["id"] for a in uploaded[1:]],
            "tags": self.args.tag or [],
            "engine": self.args.engine,
        }
        if self.args.name:
            body["name"] = self.args.name
        batch = self.client.post("batches/", body)
        return self._follow(batch, project)

    def _follow(self, batch: dict, project: dict) -> int:
        """Say what was queued and, with --wait, follow the batch to its end."""
        total = batch["counts"]["total"]
        self.say(
            ngettext(
                "Batch %(id)s: %(num)d video queued in “%(project)s”.",
                "Batch %(id)s: %(num)d videos queued in “%(project)s”.",
                total,
            )
            % {"id": batch["id"], "num": total, "project": project["name"]}
        )
        if not self.args.wait:
            return 0
        state = self.wait(f"batches/{batch['id']}/", BATCH_FINAL, self._show_batch)
        counts = state["counts"]
        summary = ngettext(
            "Batch %(id)s %(status)s: %(done)d of %(num)d video rendered.",
            "Batch %(id)s %(status)s: %(done)d of %(num)d videos rendered.",
            counts["total"],
        ) % {
            "id": state["id"],
            "status": status_word(state["status"]),
            "done": counts["succeeded"],
            "num": counts["total"],
        }
        if counts["failed"] or counts["canceled"]:
            summary += " " + _("%(failed)d failed, %(canceled)d canceled.") % {
                "failed": counts["failed"],
                "canceled": counts["canceled"],
            }
        self.say(summary)
        for job in state["jobs"]:
            if job["status"] in ("failed", "canceled"):
                source = job["audio_name"] or (job.get("script") or {}).get("excerpt") or ""
                line = _("job %(id)s (%(audio)s): %(status)s: %(error)s") % {
                    "id": job["id"],
                    "audio": source,
                    "status": status_word(job["status"]),
                    "error": job["error"],
                }
                self.say("  " + line)
        return 0 if state["status"] == "succeeded" else 1

    def submit_sheet(self) -> int:
        """One video per row of a sheet (.xlsx or CSV); a bad row refuses the whole sheet and
        every row's error is printed with its row number."""
        sheet = Path(self.args.sheet)
        if not sheet.is_file():
            raise Failure(_("The sheet %(path)s does not exist.") % {"path": sheet})
        project = self.find_project(self.args.project)
        if project is None:
            raise Failure(
                _("There is no project “%(name)s” in this organization.")
                % {"name": self.args.project}
            )
        fields = [("project", str(project["id"])), ("engine", self.args.engine)]
        fields += [("tags", tag) for tag in self.args.tag or []]
        if self.args.name:
            fields.append(("name", self.args.name))
        try:
            batch = self.client.upload("sheets/", fields, [("file", sheet, sheet.name)])
        except ApiError as exc:
            if exc.code != "sheet_invalid":
                raise
            print(_("error: %(message)s") % {"message": exc.message}, file=self.err)
            for number, problems in sorted(exc.fields.items(), key=_row_number):
                for problem in problems:
                    line = _("Row %(number)s: %(problem)s") % {
                        "number": _row_number((number, problems)),
                        "problem": problem,
                    }
                    print("  " + line, file=self.err)
            return 2
        return self._follow(batch, project)

    def template(self) -> int:
        """Save the template sheet to start from."""
        out = Path(self.args.out)
        if not out.parent.is_dir():
            raise Failure(_("The folder %(path)s does not exist.") % {"path": out.parent})
        part = out.with_name(out.name + ".part")
        self.client.download("sheets/template.xlsx", part, key=f"{self.client.base}template")
        part.replace(out)
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        self.say(_("Saved the template sheet as %(path)s.") % {"path": out})
        return 0

    @staticmethod
    def _show_batch(state: dict, bar: ProgressBar) -> None:
        c = state["counts"]
        finished = c["succeeded"] + c["failed"] + c["canceled"]
        detail = _("%(finished)s/%(total)s done, %(running)s running") % {
            "finished": finished,
            "total": c["total"],
            "running": c["running"],
        }
        bar.update(state["percent"] / 100, detail)

    # --- export ---

    def export(self) -> int:
        out = Path(self.args.out)
        if not out.parent.is_dir():
            raise Failure(_("The folder %(path)s does not exist.") % {"path": out.parent})
        project = self.find_project(self.args.project)
        if project is None:
            raise Failure(
                _("There is no project “%(name)s” in this organization.")
                % {"name": self.args.project}
            )
        body: dict[str, Any] = {"project": project["id"]}
        if self.args.tag:
            body["tags"] = self.args.tag
        export = self.client.post("exports/", body)
        fresh = self.client.last_status == 201
        values = {
            "id": export["id"],
            "label": export["label"],
            "num": export["file_count"],
            "size": human_bytes(export["total_bytes"]),
        }
        if export.get("reused"):
            text = ngettext(
                "Bundle %(id)s (%(label)s): %(num)d video, %(size)s — the same bundle is "
                "ready, downloading it.",
                "Bundle %(id)s (%(label)s): %(num)d videos, %(size)s — the same bundle is "
                "ready, downloading it.",
                export["file_count"],
            )
        elif fresh:
            text = ngettext(
                "Bundle %(id)s (%(label)s): %(num)d video, %(size)s.",
                "Bundle %(id)s (%(label)s): %(num)d videos, %(size)s.",
                export["file_count"],
            )
        else:
            text = ngettext(
                "Bundle %(id)s (%(label)s): %(num)d video, %(size)s — already being built, "
                "following it.",
                "Bundle %(id)s (%(label)s): %(num)d videos, %(size)s — already being built, "
                "following it.",
                export["file_count"],
            )
        self.say(text % values)
        state = self.wait(f"exports/{export['id']}/", EXPORT_FINAL, self._show_export)
        if state["status"] != "ready":
            raise Failure(
                _("The bundle was not built: %(status)s. %(error)s")
                % {"status": status_word(state["status"]), "error": state["error"]},
                1,
            )
        part = out.with_name(out.name + ".part")
        bar = ProgressBar(_("download %(name)s") % {"name": out.name}, self.err)
        self.client.download(
            f"exports/{state['id']}/download/",
            part,
            key=f"{self.client.base}exports/{state['id']}/{state['filename']}",
            progress=lambda done, total: bar.update(done / total if total else 1.0),
        )
        bar.done(human_bytes(part.stat().st_size))
        report = verify_bundle(part)
        if not report.ok:
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".json").unlink(missing_ok=True)
            problems = "\n  ".join(report.problems[:20])
            raise Failure(
                _(
                    "The bundle does not match its manifest.csv; it was deleted, run the "
                    "command again:\n  %(problems)s"
                )
                % {"problems": problems},
                3,
            )
        part.replace(out)
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        self.say(
            ngettext(
                "Saved %(path)s (%(size)s): %(num)d video matches the manifest's SHA-256.",
                "Saved %(path)s (%(size)s): %(num)d videos match the manifest's SHA-256.",
                report.checked,
            )
            % {"path": out, "size": human_bytes(out.stat().st_size), "num": report.checked}
        )
        return 0

    @staticmethod
    def _show_export(state: dict, bar: ProgressBar) -> None:
        detail = status_word(state["status"])
        if state["slow"]:
            detail = _("%(status)s — a large bundle, it will take a while") % {"status": detail}
        bar.update(1.0 if state["status"] in EXPORT_FINAL else 0.0, detail)

    # --- status ---

    def status(self) -> int:
        if self.args.batch:
            state = self.client.get(f"batches/{self.args.batch}/")
            c = state["counts"]
            self.say(
                _(
                    "Batch %(id)s (%(name)s, project #%(project)s): %(status)s, %(percent)s %% — "
                    "%(succeeded)s succeeded, %(running)s running, %(queued)s queued, "
                    "%(failed)s failed, %(canceled)s canceled."
                )
                % {
                    "id": state["id"],
                    "name": state["name"] or _("unnamed"),
                    "project": state["project"],
                    "status": status_word(state["status"]),
                    "percent": state["percent"],
                    "succeeded": c["succeeded"],
                    "running": c["running"],
                    "queued": c["queued"],
                    "failed": c["failed"],
                    "canceled": c["canceled"],
                }
            )
            job_word = _("job")
            for job in state["jobs"]:
                line = f"  {job_word} {job['id']:>6}  {status_word(job['status']):<9} "
                line += f"{job['percent']:>3} %  {job['avatar_name']} × {job['audio_name']}"
                if job["error"]:
                    line += f"  — {job['error']}"
                self.say(line)
            return 0
        batches = self.client.get("batches/", limit=self.args.limit)["results"]
        if not batches:
            self.say(_("No batches yet."))
        for b in batches:
            c = b["counts"]
            done = _("%(finished)s/%(total)s done") % {
                "finished": c["succeeded"],
                "total": c["total"],
            }
            project = _("project #%(id)s") % {"id": b["project"]}
            when = local_minute(b["created_at"])
            status = status_word(b["status"])
            self.say(f"{b['id']:>6}  {status:<9} {done}  {project}  {when}  {b['name']}")
        return 0


def _row_number(item: tuple[str, list]) -> int:
    """``row_12`` → 12 (the API names a sheet's errors by row)."""
    name = item[0]
    return int(name[4:]) if name.startswith("row_") and name[4:].isdigit() else 0


def local_minute(stamp: str) -> str:
    """An API time (ISO 8601, UTC) as this computer's local time: ``2026-12-07 22:36``."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return (stamp or "")[:16].replace("T", " ")
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return f"{moment:%Y-%m-%d %H:%M}"


def parser() -> argparse.ArgumentParser:
    """The command line, in the locale's language (build it inside :func:`argparse_speaks`
    so argparse's own words are translated too)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=_("server, or HEYGEM_URL"))
    common.add_argument("--token", default=argparse.SUPPRESS, help=_("API token, or HEYGEM_TOKEN"))
    common.add_argument("--org", default=argparse.SUPPRESS, help=_("organization, or HEYGEM_ORG"))
    common.add_argument(
        "--interval",
        type=float,
        default=argparse.SUPPRESS,
        help=_("seconds between status polls"),
    )
    main = argparse.ArgumentParser(
        prog="python -m heygem_client",
        description=_("HeyGem Studio from the command line."),
        parents=[common],
    )
    main.add_argument("--version", action="version", version=__version__)
    commands = main.add_subparsers(dest="command", required=True)

    submit = commands.add_parser(
        "submit",
        parents=[common],
        help=_("upload an avatar and a folder of audio, render them"),
        description=_("Upload an avatar and a folder of audio tracks, and render them."),
    )
    submit.add_argument("--avatar", help=_("the avatar video"))
    submit.add_argument("--audio-dir", help=_("a folder of audio tracks"))
    submit.add_argument(
        "--sheet",
        help=_(
            "a batch sheet (.xlsx or CSV), one row per video, instead of --avatar and "
            "--audio-dir; its avatars and audio files must be in the library"
        ),
    )
    submit.add_argument("--project", help=_("project name (created if missing)"))
    submit.set_defaults(subparser=submit)
    submit.add_argument("--tag", action="append", help=_("a tag for the batch (repeatable)"))
    submit.add_argument("--engine", default="warp", help=_("render engine (default: warp)"))
    submit.add_argument("--name", default="", help=_("a name for the batch"))
    submit.add_argument("--wait", action="store_true", help=_("follow the batch until it is done"))

    export = commands.add_parser(
        "export",
        parents=[common],
        help=_("build, download and verify a project's bundle"),
        description=_("Build, download and verify a project's bundle."),
    )
    export.add_argument("--project", required=True, help=_("project name (or id)"))
    export.add_argument("--tag", action="append", help=_("only videos with this tag (repeatable)"))
    export.add_argument("--out", required=True, help=_("where to save the ZIP"))

    template = commands.add_parser(
        "template",
        parents=[common],
        help=_("download the batch sheet template"),
        description=_("Download the batch sheet template (.xlsx) to fill in."),
    )
    template.add_argument("--out", required=True, help=_("where to save the .xlsx file"))

    status = commands.add_parser(
        "status",
        parents=[common],
        help=_("recent batches, or one batch"),
        description=_("Recent batches, or one batch in detail."),
    )
    status.add_argument("--batch", type=int, help=_("one batch in detail"))
    status.add_argument("--limit", type=int, default=10, help=_("how many recent batches"))
    return main


def _check_sources(args: argparse.Namespace) -> None:
    """``submit`` takes a sheet, or an avatar and a folder of audio tracks (not both)."""
    if args.sheet:
        if args.avatar or args.audio_dir:
            args.subparser.error(_("--sheet takes the place of --avatar and --audio-dir."))
        if not args.project:
            args.subparser.error(
                argparse._("the following arguments are required: %s") % "--project"
            )
        return
    missing = [name for name, value in (("--avatar", args.avatar), ("--audio-dir", args.audio_dir))
               if not value]  # fmt: skip
    if not args.project:
        missing.append("--project")
    if missing:
        args.subparser.error(
            argparse._("the following arguments are required: %s") % ", ".join(missing)
        )


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         sleep=time.sleep) -> int:  # fmt: skip
    out, err = out or sys.stdout, err or sys.stderr
    with argparse_speaks():
        args = parser().parse_args(argv)
        if args.command == "submit":
            _check_sources(args)
    for name, default in (("url", ""), ("token", ""), ("org", ""), ("interval", 2.0)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        command = Command(args, out, err, sleep)
        return getattr(command, args.command)()
    except Failure as exc:
        message, code = str(exc), exc.code
    except ApiError as exc:
        message, code = exc.describe(), 2
    except OSError as exc:
        message, code = str(exc), 2
    except KeyboardInterrupt:
        print(_("interrupted; run the same command again to resume a download."), file=err)
        return 130
    print(_("error: %(message)s") % {"message": message}, file=err)
    return code
