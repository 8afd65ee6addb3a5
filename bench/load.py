"""Benchmark: 100 concurrent clients browsing, submitting batches and fetching bundles.

One command builds a throwaway installation, serves it with gunicorn and both task clusters,
loads it with locust for a bounded time, waits for the work it caused, checks it, removes it:

1. a temp dir (``VAR_DIR``: media, exports, logs; the SQLite file on the embedded stack) and
   a stack: **scale-out** (a fresh PostgreSQL database ``heygem_load_<pid>`` on 127.0.0.1:5432,
   trust auth as ``postgres`` or ``root``, dropped at the end; Redis on 127.0.0.1:6379, the
   first empty db of 13, 12, 11, 14 with queue names of this run's own, ``Q_SITE_NAME`` and
   ``Q_RENDER_QUEUE`` = ``heygem-load-<pid>`` / ``render-load-<pid>``; only the keys this run
   created are deleted at the end) when both answer, else **embedded** (SQLite in WAL mode,
   django-q2's ORM broker); ``--stack`` chooses. DJANGO_ENV=development, DEBUG=false,
   ALLOWED_HOSTS=127.0.0.1; every other setting at its default, limits included (none is
   raised: the per-user bundle budgets, EXPORT_REQUEST_RATE 60/hour and EXPORT_DOWNLOAD_RATE
   600/hour, are far above the ~2 bundles per account a default run asks for, and the login
   lockout counts failures only; a 429 counts as an error);
2. ``manage.py migrate`` and ``createcachetable``; a seed in a child process through the
   services: an organization (owner, 2 admins, 9 members; one random password), 3 projects,
   one 1 s 256x256 avatar with a face and 4 audio tracks of 0.8-1.6 s (made by
   ``tests/media.py``, uploaded through ``jobs.services.asset_create``, so probed and face-checked
   like an upload), and one batch of 2 videos per project rendered right there (``Q_SYNC=1``), so
   there are finished batches to bundle from the first second;
3. ``gunicorn heygem_site.wsgi`` on a free loopback port (sync workers, 2 x cores + 1), the
   light cluster (``manage.py qcluster``: exports, schedules) and the render cluster
   (``Q_CLUSTER_NAME=<render queue> manage.py qcluster``, one worker), as ``rundev`` starts them;
4. locust, headless, in a subprocess (``bench/load_locustfile.py``; no web UI, nothing leaves
   the machine): ``--users`` clients spawned at ``--spawn-rate`` per second, each logging in
   through the real form, then acting with 0.5-2 s pauses: mostly browsing (org home,
   projects, a project, a batch and its status.json, bundles, a bundle, notifications, the
   audit log for admins), sometimes submitting a batch (the uploaded avatar x 1-2 tracks, at
   most one every ``--submit-every`` s across all clients) and sometimes asking for the bundle of
   a finished batch (one every ``--export-every`` s), following it and downloading the ZIP. The
   load runs ``--duration`` s from the moment every client has logged in (the login storm
   before it is reported, not measured);
5. then a bounded wait (``--drain``, 5 min) for every render job and every bundle in the
   database to reach a final state (jobs: succeeded / failed / canceled; bundles: ready /
   failed / expired), with progress every 15 s, and ``manage.py verify_audit``.

Report: per request kind, count, p50 / p95 / max (ms) and errors; the measured window's
throughput; what the clients did; jobs and bundles by final state; the excerpts of any
traceback the gunicorn and qcluster logs hold (all logs are in the temp dir; ``--keep`` keeps
it). LAST line: ``load: N req/s p95 M ms errors E lost L``. ``N`` and ``M`` are over the
requests started in the measured window; ``E`` counts every request that failed at any time
(any 5xx or 4xx, 429 included, a connection error or timeout, a refused form, a redirect to the
login page, a bundle that is not the announced ZIP), plus exceptions in the clients' code (an
answer they could not read), plus jobs and bundles that ended ``failed``, plus 1 when
``verify_audit`` fails; ``L`` counts jobs and bundles not final after
the wait, plus batch jobs and bundles a client saw accepted that have no row. Goal: errors 0,
lost 0. The exit status is 1 when either is not 0.

    .venv/bin/python bench/load.py                       # auto stack, 100 clients, 60 s
    .venv/bin/python bench/load.py --stack embedded --duration 20
    .venv/bin/python bench/load.py --stack scaleout --users 100 --keep
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import clean_environ, django_setup, log, pct, proc_stat_cpu, wait_for_gunicorn

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PG_PORT, REDIS_PORT = 5432, 6379
REDIS_DBS = (13, 12, 11, 14)  # 15 is the test suite's
ORG = "load"

# Besides common.APP_VARIABLES: what would change how its queue runs, its limits, or locust.
QUEUE_AND_LIMIT_VARIABLES = (
    "Q_SYNC",
    "Q_CLUSTER_NAME",
    "Q_SITE_NAME",
    "Q_RENDER_QUEUE",
    "Q_WORKERS",
    "RENDER_WORKERS",
    "EXPORT_REQUEST_RATE",  # the per-user limits, the login lockout: the app's defaults apply
    "EXPORT_DOWNLOAD_RATE",
    "LOGIN_LOCKOUT",
    "LOGIN_FAILURE_LIMIT",
    "LOCUST_LOCUSTFILE",
    "LOCUST_HOST",
    "LOCUST_USERS",
)
JOB_FINAL = ("succeeded", "failed", "canceled")
EXPORT_FINAL = ("ready", "failed", "expired")


# =================================================================================================
# Child phases (run with the throwaway environment; Django is set up only there)
# =================================================================================================


def phase_seed(state: Path) -> None:
    """Accounts, projects, real uploads and three rendered batches, through the services."""
    django_setup()
    from django.conf import settings

    from accounts.models import Membership, User
    from accounts.services import organization_create
    from jobs import services
    from jobs.models import RenderJob
    from tests.media import make_audio, make_avatar

    started = time.perf_counter()
    password = secrets.token_urlsafe(12)
    owner = User.objects.create_user("owner@load.example", password, full_name="Load Owner")
    org = organization_create(user=owner, name="Load Studio", slug=ORG)
    accounts = [{"email": owner.email, "role": "owner"}]
    for i, role in enumerate(["admin"] * 2 + ["member"] * 9):
        user = User.objects.create_user(f"{role}{i}@load.example", password, full_name=f"{i}")
        Membership.objects.create(user=user, organization=org, role=role)
        accounts.append({"email": user.email, "role": role})
    owner_membership = Membership.objects.select_related("organization", "user").get(user=owner)

    src = Path(settings.VAR_DIR) / "src"
    src.mkdir(parents=True, exist_ok=True)
    avatar_file = make_avatar(src / "face.mp4", seconds=1.0)
    avatar = services.asset_create(
        membership=owner_membership,
        kind="avatar",
        upload=services.UploadedMedia(avatar_file, "主播_小林.mp4"),
    )
    audios = []
    for i, seconds in enumerate((0.8, 1.0, 1.2, 1.6)):
        path = make_audio(src / f"line{i}.wav", seconds=seconds)
        audios.append(
            services.asset_create(
                membership=owner_membership,
                kind="audio",
                upload=services.UploadedMedia(path, f"台词_{i + 1}.wav"),
            )
        )
    projects, finished = [], []
    for i, name in enumerate(["Spring launch", "Dealers north", "培训视频"]):
        project = services.project_create(membership=owner_membership, name=name)
        projects.append(project.pk)
        # Q_SYNC=1 in this process: the two renders run right here, before the load starts.
        batch = services.batch_submit(
            membership=owner_membership,
            project=project,
            avatars=[avatar],
            audios=audios[i : i + 2],
            tags="seed",
            name=f"Seed {i + 1}",
        )
        statuses = list(batch.jobs.values_list("status", flat=True))
        if statuses != [RenderJob.Status.SUCCEEDED] * 2:
            errors = list(batch.jobs.values_list("error", flat=True))
            raise SystemExit(f"the seed renders did not succeed: {statuses} {errors}")
        finished.append(batch.pk)
    state.write_text(
        json.dumps(
            {
                "org": ORG,
                "password": password,
                "accounts": accounts,
                "projects": projects,
                "avatar": avatar.pk,
                "audios": [a.pk for a in audios],
                "finished_batches": finished,
                "seconds": time.perf_counter() - started,
            }
        )
    )


def phase_status(client_path: Path | None) -> None:
    """Where every job and bundle stands, and what the clients saw accepted (JSON on stdout)."""
    django_setup()
    from django.db.models import Count

    from exports.models import Export
    from jobs.models import Batch, RenderJob

    jobs = dict(RenderJob.objects.values_list("status").annotate(n=Count("id")))
    exports = dict(Export.objects.values_list("status").annotate(n=Count("id")))
    out = {
        "jobs": jobs,
        "exports": exports,
        "open_jobs": sum(n for s, n in jobs.items() if s not in JOB_FINAL),
        "open_exports": sum(n for s, n in exports.items() if s not in EXPORT_FINAL),
        "batches": Batch.objects.count(),
        "failed_jobs": list(
            RenderJob.objects.filter(status="failed").values_list("pk", "attempts", "error")[:20]
        ),
        "failed_exports": list(
            Export.objects.filter(status="failed").values_list("pk", "error")[:20]
        ),
        "open_job_rows": list(
            RenderJob.objects.exclude(status__in=JOB_FINAL).values_list(
                "pk", "status", "attempts", "error"
            )[:20]
        ),
        "open_export_rows": list(
            Export.objects.exclude(status__in=EXPORT_FINAL).values_list("pk", "status", "attempts")[
                :20
            ]
        ),
        "retried_jobs": RenderJob.objects.filter(attempts__gt=1).count(),
    }
    if client_path:
        seen = json.loads(client_path.read_text())
        submitted = {int(k): v for k, v in seen["submitted"].items()}
        rows = dict(
            Batch.objects.filter(pk__in=submitted).annotate(n=Count("jobs")).values_list("pk", "n")
        )
        missing_jobs = sum(max(0, want - rows.get(pk, 0)) for pk, want in submitted.items())
        found = set(Export.objects.filter(pk__in=seen["exports"]).values_list("pk", flat=True))
        out["missing_batches"] = sorted(set(submitted) - set(rows))
        out["missing_jobs"] = missing_jobs
        out["missing_exports"] = sorted(set(seen["exports"]) - found)
    print(json.dumps(out))


# =================================================================================================
# The parent: environment, processes, load, report
# =================================================================================================


def reachable(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), 2).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Setup:
    def __init__(self, args: argparse.Namespace, stack: str) -> None:
        self.args = args
        self.stack = stack
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
        self.var = self.tmp / "var"
        self.var.mkdir()
        self.pid = os.getpid()
        self.site = f"heygem-load-{self.pid}"
        self.render_queue = f"render-load-{self.pid}"
        self.database: str | None = None
        self.pg_admin: str | None = None
        self.redis_db: int | None = None
        self.redis_before: set[bytes] = set()
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        env = clean_environ(QUEUE_AND_LIMIT_VARIABLES)
        env.update(
            DJANGO_ENV="development",
            DEBUG="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            VAR_DIR=str(self.var),
            DJANGO_SETTINGS_MODULE="heygem_site.settings",
            PYTHONPATH=str(ROOT),
            LOG_LEVEL="WARNING",  # tracebacks (django.request 4xx/5xx, tasks) stay in the logs
            Q_SYNC="0",
            Q_SITE_NAME=self.site,
            Q_RENDER_QUEUE=self.render_queue,
        )
        self.env = env

    # -- the stack -------------------------------------------------------------------------------
    def create_stack(self) -> str:
        if self.stack == "embedded":
            return "SQLite (WAL) in the temp dir, django-q2 ORM broker"
        import psycopg
        import redis
        from psycopg import sql

        name = f"heygem_load_{self.pid}"
        last_error: Exception | None = None
        for user in ("postgres", "root"):
            admin = f"postgres://{user}@{HOST}:{PG_PORT}/postgres"
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.Error as exc:
                last_error = exc
                continue
            self.pg_admin, self.database = admin, name
            self.env["DATABASE_URL"] = f"postgres://{user}@{HOST}:{PG_PORT}/{name}"
            break
        else:
            raise SystemExit(f"PostgreSQL on {HOST}:{PG_PORT}: cannot create {name}: {last_error}")
        for db in REDIS_DBS:
            client = redis.Redis(host=HOST, port=REDIS_PORT, db=db)
            if client.dbsize() == 0:
                break
        else:
            db = REDIS_DBS[0]  # none is empty: our keys still have names of their own
        self.redis_db = db
        self.redis_before = set(redis.Redis(host=HOST, port=REDIS_PORT, db=db).keys("*"))
        self.env["REDIS_URL"] = f"redis://{HOST}:{REDIS_PORT}/{db}"
        return (
            f"PostgreSQL {name} (dropped at the end), Redis db {db} "
            f"({len(self.redis_before)} keys before), queues {self.site} / {self.render_queue}"
        )

    def drop_stack(self) -> None:
        if self.database and self.pg_admin:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.pg_admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)
                    )
                )
            self.database = None
        if self.redis_db is not None:
            import redis

            client = redis.Redis(host=HOST, port=REDIS_PORT, db=self.redis_db)
            ours = (f"django_q:{self.site}:".encode(), f"django_q:{self.render_queue}:".encode())
            new = [k for k in client.scan_iter("*") if k not in self.redis_before]
            mine = [k for k in new if k.startswith(ours)]
            cache = [k for k in new if k.startswith(b":1:")]
            # The cache's keys (":1:…", no prefix of our own) are ours only if nobody else used
            # this db meanwhile; otherwise they are left to expire (every one has a timeout).
            if not self.redis_before and len(mine) + len(cache) == len(new):
                mine += cache
            for start in range(0, len(mine), 500):
                client.delete(*mine[start : start + 500])
            self.redis_db = None

    # -- commands and processes ------------------------------------------------------------------
    def run(self, *argv: str, what: str, env: dict | None = None, check: bool = True):
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode:
            raise SystemExit(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def manage(self, *argv: str, check: bool = True):
        return self.run("manage.py", *argv, what=f"manage.py {' '.join(argv)}", check=check)

    def phase(self, *argv: str, env: dict | None = None) -> str:
        return self.run(
            str(Path(__file__).resolve()), *argv, what=f"phase {argv[1]}", env=env
        ).stdout

    def status(self, client_path: Path | None = None) -> dict:
        argv = ["--phase", "status"]
        if client_path:
            argv += ["--state", str(client_path)]
        return json.loads(self.phase(*argv).strip().splitlines()[-1])

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        path = self.tmp / f"{name}.log"
        self.logs[name] = path
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env or self.env,
            stdout=path.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped with all its children
        )
        self.processes[name] = process
        return process

    def start_server(self) -> int:
        port = free_port()
        argv = [
            sys.executable, "-m", "gunicorn", "heygem_site.wsgi:application",
            "--bind", f"{HOST}:{port}",
            "--workers", str(self.args.workers),
            "--worker-class", "sync",
            "--backlog", "2048",
            "--timeout", "120",
            "--graceful-timeout", "10",
            "--log-level", "warning",
        ]  # fmt: skip
        server = self.start("gunicorn", argv)
        return wait_for_gunicorn(server, HOST, port, self.logs["gunicorn"])

    def start_clusters(self) -> None:
        manage = [sys.executable, "manage.py", "qcluster"]
        # INFO: the workers' own messages (renders, bundles) too; django-q2's follow Q_LOG_LEVEL.
        env = {**self.env, "LOG_LEVEL": "INFO"}
        self.start("qcluster-light", manage, env)
        self.start("qcluster-render", manage, {**env, "Q_CLUSTER_NAME": self.render_queue})
        deadline = time.monotonic() + 90
        waiting = {"qcluster-light", "qcluster-render"}
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                if self.processes[name].poll() is not None:
                    raise SystemExit(f"{name} exited:\n{self.logs[name].read_text()[-3000:]}")
                if "running." in self.logs[name].read_text(errors="replace"):
                    waiting.discard(name)
            time.sleep(0.3)
        if waiting:
            raise SystemExit(f"{', '.join(sorted(waiting))} did not start within 90 s")

    def dead(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is not None and n != "locust"]

    def stop(self, name: str) -> None:
        process = self.processes.get(name)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # gunicorn and qcluster stop their workers
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left in its own group

    def cleanup(self) -> None:
        try:
            for name in ("locust", "gunicorn", "qcluster-light", "qcluster-render"):
                with contextlib.suppress(Exception):
                    self.stop(name)
        finally:
            try:
                self.drop_stack()
            finally:
                if not self.args.keep:
                    shutil.rmtree(self.tmp, ignore_errors=True)


# -- statistics and report ------------------------------------------------------------------------


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    cpu = proc_stat_cpu()
    busy = sum(cpu[k] for k in ("user", "nice", "system", "irq", "softirq", "steal"))
    return busy, busy + cpu["idle"] + cpu["iowait"]


def group_cpu(groups: dict[str, int], database: str | None = None) -> dict[str, float]:
    """CPU seconds used so far by each process group (ours: started with their own session),
    children that were waited for included; and by the PostgreSQL backends serving
    ``database`` (those alive now: an approximation)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted = {pgid: name for name, pgid in groups.items()}
    used = dict.fromkeys(groups, 0.0)
    if database:
        used["postgres"] = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            name = wanted.get(int(fields[2]))  # pgrp
            if name is None and database:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                    name = "postgres"
            if name is not None:
                used[name] += sum(int(v) for v in fields[11:15]) / tick  # u, s, cu, cs time
    return used


ORDER = [
    "login form",
    "login",
    "org home",
    "projects",
    "project",
    "batch",
    "batch status.json",
    "bundles",
    "bundle",
    "notifications",
    "audit log",
    "audit log page 2",
    "new batch form",
    "submit batch",
    "bundle confirm",
    "request bundle",
    "bundle status.json",
    "bundle download",
]


def report_requests(seen: dict) -> tuple[float, float, int, float]:
    """The table; returns (throughput, p95 ms, failed requests, window seconds)."""
    records = seen["records"]
    start, end = seen["measure_start"], seen["measure_end"]
    window = (end - start) if start and end else 0.0
    measured = [r for r in records if start and start <= r[1] <= end] if window else []
    names = sorted({r[0] for r in records}, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))
    log(
        f"\n== Requests over the whole run (logins and stopping included), then those started in "
        f"the measured window ({window:.1f} s from the moment every client had logged in)"
    )
    log(
        f"{'request':<22}{'count':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
        f"{'| window':>9}{'p95 ms':>8}"
    )

    def row(name: str, every: list, mine: list) -> None:
        lat = [r[2] for r in every]
        bad = sum(1 for r in every if r[3])
        log(
            f"{name:<22}{len(every):>7}{bad:>8}{pct(lat, 50):>9.0f}{pct(lat, 95):>9.0f}"
            f"{max(lat, default=float('nan')):>9.0f}{'| ' + str(len(mine)):>9}"
            f"{pct([r[2] for r in mine], 95):>8.0f}"
        )

    for name in names:
        row(name, [r for r in records if r[0] == name], [r for r in measured if r[0] == name])
    row("all", records, measured)
    lat = [r[2] for r in measured]
    failed = sum(1 for r in records if r[3])
    for what, n in Counter(seen["errors"]).most_common(12):
        log(f"  error x{n}: {what}")
    throughput = len(lat) / window if window else 0.0
    return throughput, (pct(lat, 95) if lat else 0.0), failed, window


TRACE_START = re.compile(r"Traceback \(most recent|\b(ERROR|CRITICAL)\b|WARNING django\.request")
NEW_RECORD = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:")


def log_excerpts(paths: dict[str, Path], limit: int = 120) -> list[str]:
    """The distinct error blocks of the logs: an ERROR / CRITICAL / django.request line, or a
    bare traceback, with the lines that follow it up to the next log record; each once, with
    how often it occurred (the same last line, digits aside)."""
    out: list[str] = []
    for name, path in paths.items():
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        blocks: list[list[str]] = []
        i = 0
        while i < len(lines):
            if not TRACE_START.search(lines[i]):
                i += 1
                continue
            block, i = [lines[i]], i + 1
            while i < len(lines) and not NEW_RECORD.match(lines[i]):
                block.append(lines[i])
                i += 1
            blocks.append(block)
        counts: Counter = Counter()
        first: dict[str, list[str]] = {}
        for block in blocks:
            tail = next((b for b in reversed(block) if b.strip()), block[0])
            key = re.sub(r"\d+", "N", NEW_RECORD.sub("", tail).strip())
            counts[key] += 1
            first.setdefault(key, block)
        for key, n in counts.most_common():
            block = first[key]
            out.append(f"--- {name} (x{n}):")
            out.extend([*block[:3], "  ...", *block[-20:]] if len(block) > 25 else block)
    return out[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", choices=["auto", "embedded", "scaleout"], default="auto")
    parser.add_argument("--users", type=int, default=100, help="concurrent clients")
    parser.add_argument("--spawn-rate", type=float, default=20.0, help="clients started per s")
    parser.add_argument("--duration", type=float, default=60.0, help="measured load (s)")
    parser.add_argument(
        "--submit-every", type=float, default=3.0, help="one batch submission per N s (all)"
    )
    parser.add_argument(
        "--export-every", type=float, default=5.0, help="one bundle request per N s (all)"
    )
    parser.add_argument("--drain", type=float, default=300.0, help="max wait for the work (s)")
    parser.add_argument(
        "--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn workers"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, DB)")
    parser.add_argument("--phase", choices=["seed", "status"], help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "seed":
        return phase_seed(args.state)
    if args.phase == "status":
        return phase_status(args.state)

    stack = args.stack
    if stack == "auto":
        stack = "scaleout" if reachable(PG_PORT) and reachable(REDIS_PORT) else "embedded"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    setup = Setup(args, stack)
    result = {"throughput": 0.0, "p95": 0.0, "errors": 1, "lost": 0}  # until it completes
    try:
        result = run(setup, args, stack)
    except BaseException as exc:  # a setup failure, Ctrl-C, SIGTERM: still the last line
        log(f"\n!! the bench stopped: {type(exc).__name__}: {exc}")
    finally:
        setup.cleanup()
    throughput = result["throughput"]
    n = f"{throughput:.1f}" if throughput < 100 else f"{throughput:.0f}"
    log(
        f"load: {n} req/s p95 {round(result['p95'])} ms errors {result['errors']} "
        f"lost {result['lost']}"
    )
    if result["errors"] or result["lost"]:
        sys.exit(1)


def run(setup: Setup, args: argparse.Namespace, stack: str) -> dict:
    """Seed, serve, load, wait, verify; returns the figures of the last line."""
    described = setup.create_stack()
    log(
        f"bench/load.py: {args.users} clients, {args.duration:g} s measured, stack {stack}: "
        f"{described}"
    )
    log(
        f"  temp dir {setup.tmp}; cores {os.cpu_count()}; load average before "
        f"{os.getloadavg()[0]:.2f}"
    )
    t0 = time.perf_counter()
    setup.manage("migrate", "--noinput", "-v", "0")
    setup.manage("createcachetable")
    seed_path = setup.tmp / "seed.json"
    setup.phase("--phase", "seed", "--state", str(seed_path), env={**setup.env, "Q_SYNC": "1"})
    seed = json.loads(seed_path.read_text())
    log(
        f"migrated and seeded in {time.perf_counter() - t0:.1f} s: {len(seed['accounts'])} "
        f"accounts, {len(seed['projects'])} projects, 1 avatar + {len(seed['audios'])} audio "
        f"uploads, {len(seed['finished_batches'])} rendered batches"
    )

    port = setup.start_server()
    setup.start_clusters()
    log(
        f"gunicorn on {HOST}:{port} ({args.workers} sync workers), light cluster "
        f"{setup.site} and render cluster {setup.render_queue} running"
    )

    out_path = setup.tmp / "clients.json"
    config_path = setup.tmp / "locust-config.json"
    config_path.write_text(
        json.dumps(
            {
                **{k: seed[k] for k in ("org", "password", "accounts", "projects")},
                **{k: seed[k] for k in ("avatar", "audios", "finished_batches")},
                "users": args.users,
                "duration": args.duration,
                "login_grace": 120.0,
                "submit_every": args.submit_every,
                "export_every": args.export_every,
                "bundle_wait": 120.0,
                "out": str(out_path),
            }
        )
    )
    cap = int(args.duration + 120 + args.users / max(args.spawn_rate, 0.1) + 60)
    argv = [
        sys.executable, "-m", "locust",
        "-f", str(ROOT / "bench" / "load_locustfile.py"),
        "--headless", "--only-summary",
        "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{cap}s", "--stop-timeout", "20",
        "--host", f"http://{HOST}:{port}",
        "--csv", str(setup.tmp / "locust"),
        "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    locust_env = {**setup.env, "LOAD_CONFIG": str(config_path)}
    log(
        f"locust: {args.users} clients at {args.spawn_rate:g}/s, logging in, then "
        f"{args.duration:g} s of load (one batch every {args.submit_every:g} s, one bundle "
        f"every {args.export_every:g} s across all clients) ..."
    )
    t_load = time.perf_counter()
    client = setup.start("locust", argv, locust_env)
    groups = {name: p.pid for name, p in setup.processes.items()}
    cpu0, ours0 = machine_cpu(), group_cpu(groups, setup.database)
    ours1 = ours0
    while client.poll() is None and time.perf_counter() - t_load < cap + 120:
        ours1 = group_cpu(groups, setup.database)  # locust's own, read before it exits
        time.sleep(0.5)
    cpu1 = machine_cpu()
    last = group_cpu(groups, setup.database)
    ours1 = {**ours1, **{k: v for k, v in last.items() if k != "locust"}}
    if client.poll() is None:
        setup.stop("locust")
    if not out_path.exists():
        raise SystemExit(f"locust wrote nothing:\n{setup.logs['locust'].read_text()[-3000:]}")
    seen = json.loads(out_path.read_text())
    busy, total = cpu1[0] - cpu0[0], max(cpu1[1] - cpu0[1], 1e-9)
    used = {k: ours1[k] - ours0[k] for k in ours0}
    log(
        f"locust finished after {time.perf_counter() - t_load:.0f} s; CPU meanwhile (core-s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in used.items())
        + f", other processes {max(0.0, busy - sum(used.values())):.0f}; the machine was "
        f"{100 * busy / total:.0f}% busy"
    )
    throughput, p95, failed_requests, _window = report_requests(seen)
    served = len(seen["records"])
    if served:
        log(
            f"gunicorn CPU per request: {1000 * used['gunicorn'] / served:.0f} ms "
            f"({served} requests, logins included)"
        )
    log("\n== What the clients did")
    for what, n in sorted(seen["actions"].items()):
        log(f"  {what}: {n}")
    log(f"  distinct bundles (asking again for one being built joins it): {len(seen['exports'])}")
    if seen["downloads"]:
        sizes = [d["bytes"] for d in seen["downloads"]]
        log(f"  bundle sizes: {min(sizes)}..{max(sizes)} bytes, each a ZIP of the size announced")

    # -- the work the load caused: every job and bundle must reach a final state --
    log(f"\n== Waiting (at most {args.drain:g} s) for every job and bundle to finish")
    t_drain = time.monotonic()
    last_print = 0.0
    while True:
        state = setup.status(out_path)
        open_work = state["open_jobs"] + state["open_exports"]
        elapsed = time.monotonic() - t_drain
        if not open_work or elapsed >= args.drain or setup.dead():
            break
        if elapsed - last_print >= 15:
            log(
                f"  {elapsed:5.0f} s: {state['open_jobs']} jobs and {state['open_exports']} "
                f"bundles not final yet; jobs {state['jobs']}, bundles {state['exports']}"
            )
            last_print = elapsed
        time.sleep(3)
    log(
        f"  after {time.monotonic() - t_drain:.0f} s: jobs {state['jobs']}, bundles "
        f"{state['exports']} ({state['batches']} batches)"
    )
    if setup.dead():
        log(f"  !! these processes died: {', '.join(setup.dead())}")
    lost = (
        state["open_jobs"]
        + state["open_exports"]
        + state["missing_jobs"]
        + len(state["missing_exports"])
    )
    for pk, status, attempts, error in state["open_job_rows"]:
        log(f"  not final: job {pk} {status} (attempt {attempts}) {error[:150]}")
    for pk, status, attempts in state["open_export_rows"]:
        log(f"  not final: bundle {pk} {status} (attempt {attempts})")
    if state["missing_batches"] or state["missing_jobs"]:
        log(
            f"  !! accepted by the server but missing: batches {state['missing_batches']}, "
            f"{state['missing_jobs']} jobs"
        )
    if state["missing_exports"]:
        log(f"  !! bundles the clients were sent to but missing: {state['missing_exports']}")
    for pk, attempts, error in state["failed_jobs"]:
        log(f"  failed: job {pk} (attempt {attempts}): {error[:200]}")
    for pk, error in state["failed_exports"]:
        log(f"  failed: bundle {pk}: {error[:200]}")
    if state["retried_jobs"]:
        log(f"  jobs that needed more than one attempt: {state['retried_jobs']}")
    failed_work = state["jobs"].get("failed", 0) + state["exports"].get("failed", 0)

    audit = setup.manage("verify_audit", check=False)
    verdict = (audit.stdout + audit.stderr).strip().splitlines()
    log("\n== verify_audit: " + ("; ".join(verdict) or f"exit {audit.returncode}"))
    errors = (
        failed_requests + seen["client_exceptions"] + failed_work + (1 if audit.returncode else 0)
    )

    # -- what the logs say --
    for name in ("gunicorn", "qcluster-light", "qcluster-render"):
        setup.stop(name)
    excerpts = log_excerpts(
        {
            **{n: p for n, p in setup.logs.items() if n != "locust"},
            "heygem.log": setup.var / "log" / "heygem.log",
        }
    )
    if excerpts:
        log("\n== Errors in the server and worker logs (distinct; all logs in the temp dir)")
        for line in excerpts:
            log("  " + line)
    else:
        log("\nno traceback or ERROR line in the gunicorn, qcluster and app logs")
    log(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.keep:
        log(f"kept: {setup.tmp}")
    return {"throughput": throughput, "p95": p95, "errors": errors, "lost": lost}


if __name__ == "__main__":
    main()
