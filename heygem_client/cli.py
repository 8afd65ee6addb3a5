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
from pathlib import Path
from typing import Any, TextIO

from heygem_client import __version__
from heygem_client.bundle import verify_bundle
from heygem_client.http import ApiError, Client
from heygem_client.progress import ProgressBar, human_bytes

AUDIO_EXTENSIONS = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".mka"}
BATCH_FINAL = {"succeeded", "failed", "canceled", "partial", "empty"}
EXPORT_FINAL = {"ready", "failed", "expired"}


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
            raise Failure("No API token: pass --token or set HEYGEM_TOKEN.")
        if not org:
            raise Failure("No organization: pass --org or set HEYGEM_ORG (its address, e.g. acme).")
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
        bar = ProgressBar(f"upload {path.name}", self.err)
        asset = self.client.upload(
            "assets/",
            {"kind": kind},
            [("file", path, path.name)],
            progress=lambda sent, total: bar.update(sent / total if total else 1.0),
        )
        bar.done(f"{human_bytes(asset['bytes'])}, {asset['duration']:.1f} s")
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
        avatar = Path(self.args.avatar)
        folder = Path(self.args.audio_dir)
        if not avatar.is_file():
            raise Failure(f"The avatar video {avatar} does not exist.")
        if not folder.is_dir():
            raise Failure(f"The audio folder {folder} does not exist.")
        audios = sorted(
            p for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS
        )  # fmt: skip
        if not audios:
            raise Failure(
                f"No audio files in {folder} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})."
            )
        project = self.find_project(self.args.project)
        if project is None:
            project = self.client.post("projects/", {"name": self.args.project})
            self.say(f"Created project “{project['name']}” (#{project['id']}).")
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
        self.say(
            f"Batch {batch['id']}: {batch['counts']['total']} videos queued in “{project['name']}”."
        )
        if not self.args.wait:
            return 0
        state = self.wait(f"batches/{batch['id']}/", BATCH_FINAL, self._show_batch)
        counts = state["counts"]
        self.say(
            f"Batch {state['id']} {state['status']}: {counts['succeeded']} of {counts['total']} "
            f"videos rendered" + (f", {counts['failed']} failed" if counts["failed"] else "")
            + (f", {counts['canceled']} canceled" if counts["canceled"] else "") + "."
        )  # fmt: skip
        for job in state["jobs"]:
            if job["status"] in ("failed", "canceled"):
                self.say(
                    f"  job {job['id']} ({job['audio_name']}): {job['status']}: {job['error']}"
                )
        return 0 if state["status"] == "succeeded" else 1

    @staticmethod
    def _show_batch(state: dict, bar: ProgressBar) -> None:
        c = state["counts"]
        finished = c["succeeded"] + c["failed"] + c["canceled"]
        bar.update(state["percent"] / 100, f"{finished}/{c['total']} done, {c['running']} running")

    # --- export ---

    def export(self) -> int:
        out = Path(self.args.out)
        if not out.parent.is_dir():
            raise Failure(f"The folder {out.parent} does not exist.")
        project = self.find_project(self.args.project)
        if project is None:
            raise Failure(f"There is no project “{self.args.project}” in this organization.")
        body: dict[str, Any] = {"project": project["id"]}
        if self.args.tag:
            body["tags"] = self.args.tag
        export = self.client.post("exports/", body)
        fresh = self.client.last_status == 201
        self.say(
            f"Export {export['id']} ({export['label']}): {export['file_count']} videos, "
            f"{human_bytes(export['total_bytes'])}"
            + ("." if fresh else " — already being built, following it.")
        )
        state = self.wait(f"exports/{export['id']}/", EXPORT_FINAL, self._show_export)
        if state["status"] != "ready":
            raise Failure(f"The bundle was not built: {state['status']}. {state['error']}", 1)
        part = out.with_name(out.name + ".part")
        bar = ProgressBar(f"download {out.name}", self.err)
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
                f"The bundle does not match its manifest.csv; it was deleted, run the command "
                f"again:\n  {problems}",
                3,
            )
        part.replace(out)
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        self.say(
            f"Saved {out} ({human_bytes(out.stat().st_size)}): {report.checked} videos match "
            "the manifest's SHA-256."
        )
        return 0

    @staticmethod
    def _show_export(state: dict, bar: ProgressBar) -> None:
        detail = state["status"] + (
            " — a large bundle, it will take a while" if state["slow"] else ""
        )
        bar.update(1.0 if state["status"] in EXPORT_FINAL else 0.0, detail)

    # --- status ---

    def status(self) -> int:
        if self.args.batch:
            state = self.client.get(f"batches/{self.args.batch}/")
            c = state["counts"]
            self.say(
                f"Batch {state['id']} ({state['name'] or 'unnamed'}, project #{state['project']}): "
                f"{state['status']}, {state['percent']} % — {c['succeeded']} succeeded, "
                f"{c['running']} running, {c['queued']} queued, {c['failed']} failed, "
                f"{c['canceled']} canceled."
            )
            for job in state["jobs"]:
                line = f"  job {job['id']:>6}  {job['status']:<9} {job['percent']:>3} %  "
                line += f"{job['avatar_name']} × {job['audio_name']}"
                if job["error"]:
                    line += f"  — {job['error']}"
                self.say(line)
            return 0
        batches = self.client.get("batches/", limit=self.args.limit)["results"]
        if not batches:
            self.say("No batches yet.")
        for b in batches:
            c = b["counts"]
            self.say(
                f"{b['id']:>6}  {b['status']:<9} {c['succeeded']}/{c['total']} done  "
                f"project #{b['project']}  {b['created_at'][:16].replace('T', ' ')}  {b['name']}"
            )
        return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="server, or HEYGEM_URL")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token, or HEYGEM_TOKEN")
    common.add_argument("--org", default=argparse.SUPPRESS, help="organization, or HEYGEM_ORG")
    common.add_argument(
        "--interval", type=float, default=argparse.SUPPRESS, help="seconds between status polls"
    )
    main = argparse.ArgumentParser(
        prog="python -m heygem_client",
        description="HeyGem Studio from the command line.",
        parents=[common],
    )
    main.add_argument("--version", action="version", version=__version__)
    commands = main.add_subparsers(dest="command", required=True)

    submit = commands.add_parser(
        "submit", parents=[common], help="upload an avatar and a folder of audio, render them"
    )
    submit.add_argument("--avatar", required=True, help="the avatar video")
    submit.add_argument("--audio-dir", required=True, help="a folder of audio tracks")
    submit.add_argument("--project", required=True, help="project name (created if missing)")
    submit.add_argument("--tag", action="append", help="a tag for the batch (repeatable)")
    submit.add_argument("--engine", default="warp", help="render engine (default: warp)")
    submit.add_argument("--name", default="", help="a name for the batch")
    submit.add_argument("--wait", action="store_true", help="follow the batch until it is done")

    export = commands.add_parser(
        "export", parents=[common], help="build, download and verify a project's bundle"
    )
    export.add_argument("--project", required=True, help="project name (or id)")
    export.add_argument("--tag", action="append", help="only videos with this tag (repeatable)")
    export.add_argument("--out", required=True, help="where to save the ZIP")

    status = commands.add_parser("status", parents=[common], help="recent batches, or one batch")
    status.add_argument("--batch", type=int, help="one batch in detail")
    status.add_argument("--limit", type=int, default=10, help="how many recent batches")
    return main


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         sleep=time.sleep) -> int:  # fmt: skip
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    for name, default in (("url", ""), ("token", ""), ("org", ""), ("interval", 2.0)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        command = Command(args, out, err, sleep)
        return getattr(command, args.command)()
    except Failure as exc:
        print(f"error: {exc}", file=err)
        return exc.code
    except ApiError as exc:
        print(f"error: {exc.describe()}", file=err)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume a download.", file=err)
        return 130
