"""Benchmark: building an export bundle against a plain ``cat`` of the same files.

Makes 40 random-byte videos totalling 1 GiB (Chinese names among them) in a temp folder on the
same filesystem as the outputs, computes their CRC-32s once (as the render step does), then in
the same process times, each to a fresh file in the same folder, each followed by fsync (or
none of them, with ``--no-fsync``):

- ``cat f1 ... f40 > out`` (the baseline),
- ``exports.services.build_export`` — the real build: Output rows in a throwaway SQLite
  platform, scope, names, manifest.csv, STORED with the recorded CRCs, kernel copies, fsync,
  rename (this is the ratio the last line reports),
- ``exports.zipwriter.write_zip`` alone, without rows (for comparison),
- stdlib ``zipfile`` STORED and ``zipfile`` DEFLATED (the seed's approach), on a 4-file subset
  against ``cat`` of the same subset (``--all``: on the full 1 GiB; DEFLATE takes minutes).

The page cache is dropped before every run when this process may (root), so every variant reads
from disk; otherwise everything runs warm after a warm-up read (``--warm`` forces that). Each
round runs every variant once, the order alternating; the ratio is the median over rounds of
each run's time over the ``cat`` run of the same round (a VM disk is noisy, and neighbouring
runs share its mood). Peak memory of a build is measured in a fresh child process
(``getrusage`` max RSS, and tracemalloc's peak of Python allocations) for a 100 MB, a 1 GiB
and a 5 GiB bundle (the 5 GiB one reuses the 1 GiB of files under other names), through
``write_zip`` to a file and ``iter_zip`` to a discarding sink (the S3 upload path). Temp files
are deleted at the end. The peak RSS of the real build (a fresh Django process) is measured
for a 100 MB and a 5 GB bundle. LAST line:
``export/cat wall ratio: X.XX  peak RSS 100MB: N MB  5GB: M MB`` (bars: ratio <= 1.10,
RSS <= 100 MB and the same for both).

    python bench/export.py [--repeat 5] [--all] [--warm] [--no-fsync] [--dir DIR] [--big-gib 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exports.zipwriter import ZipEntry, iter_zip, write_zip

MiB, GiB = 1 << 20, 1 << 30
FILES = 40
TOTAL = 1 * GiB
SUBSET = 4  # files in the subset the slow stdlib variants run on (about 100 MB)


# --- inputs ---------------------------------------------------------------------------------------


def make_videos(folder: Path) -> list[tuple[Path, str]]:
    """40 files of 20-33 MB, 1 GiB in all: one random MiB, stamped with a counter per MiB."""
    weights = [1.0 + 0.3 * ((i * 7) % 11 - 5) / 5 for i in range(FILES)]
    sizes = [int(TOTAL * w / sum(weights)) for w in weights]
    sizes[-1] += TOTAL - sum(sizes)
    block = bytearray(os.urandom(MiB))
    made = []
    for index, size in enumerate(sizes):
        path = folder / f"src_{index:02d}.mp4"
        with path.open("wb") as fh:
            for mib in range(0, size, MiB):
                struct.pack_into("<QQ", block, 0, index, mib)
                fh.write(memoryview(block)[: min(MiB, size - mib)])
        if index % 3 == 0:
            name = f"批次_{index // 10}/数字人_北京_第{index + 1}条.mp4"
        else:
            name = f"batch_{index // 10}/avatar_{index + 1:02d}.mp4"
        made.append((path, name))
    return made


def crc32_of(path: Path) -> int:
    crc, buffer = 0, bytearray(MiB)
    with path.open("rb", buffering=0) as fh:
        while count := fh.readinto(buffer):
            crc = zlib.crc32(memoryview(buffer)[:count], crc)
    return crc


def manifest_for(rows: list[dict]) -> ZipEntry:
    lines = ["path,bytes,crc32"] + [f"{r['name']},{r['size']},{r['crc']:08x}" for r in rows]
    return ZipEntry.from_bytes("manifest.csv", ("\n".join(lines) + "\n").encode())


def entries_for(rows: list[dict]) -> list[ZipEntry]:
    """manifest.csv first (so the first entry never needs ZIP64), then the videos."""
    videos = [ZipEntry(r["name"], Path(r["path"]), r["size"], r["crc"]) for r in rows]
    return [manifest_for(rows), *videos]


# --- the real service: Django rows and exports.services.build_export ----------------------------


def django_env(work: Path) -> dict[str, str]:
    """A throwaway platform: SQLite and folders inside ``work``, on the same filesystem."""
    return {
        "DJANGO_SETTINGS_MODULE": "heygem_site.settings",
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "VAR_DIR": str(work / "var"),
        "MEDIA_ROOT": str(work / "media"),
        "EXPORT_ROOT": str(work / "exports"),
        "LOG_LEVEL": "WARNING",
        "Q_SYNC": "0",  # the request queues a build that nobody runs; we call the builder
    }


def setup_django(work: Path) -> None:
    os.environ.update(django_env(work))
    import django

    django.setup()


def seed(work: Path, rows: list[dict], big_gib: float) -> dict[str, int]:
    """Rows for three batches (100 MB, 1 GiB, the big one) whose outputs are the bench files."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from accounts.services import organization_create
    from jobs.models import Asset, Batch, Output, Project, RenderJob

    user = User.objects.create_user("bench@example.com", "bench-password")
    org = organization_create(user=user, name="Bench", slug="bench")
    project = Project.objects.create(organization=org, name="Bench")
    common = {"organization": org, "duration": 1.0, "bytes": 1, "sha256": "0" * 64}
    avatar = Asset.objects.create(kind="avatar", file="a.mp4", original_name="主播.mp4", **common)
    audio = Asset.objects.create(kind="audio", file="b.wav", original_name="音频.wav", **common)
    media = work / "media"
    batches = {}
    for label, picked in {
        "100MB": rows[:SUBSET],
        "1GiB": rows,
        "big": reuse(rows, int(big_gib * GiB)),
    }.items():
        batch = Batch.objects.create(project=project, engine="warp", name=label)
        for row in picked:
            job = RenderJob.objects.create(
                batch=batch, avatar=avatar, audio=audio, engine="warp", status="succeeded"
            )
            Output.objects.create(
                job=job,
                file=str(Path(row["path"]).relative_to(media)),
                name=Path(row["name"]).name,
                bytes=row["size"],
                sha256="0" * 64,  # the builder copies it into the manifest; never recomputed
                crc32=row["crc"],
                duration=30.0,
                width=1280,
                height=720,
            )
        batches[label] = batch.pk
    return {"organization": org.pk, "user": user.pk, **batches}


def build_through_service(batch_id: int) -> Path:
    """Ask for the batch's bundle as its owner and build it, as a worker would."""
    from django.http import QueryDict

    from accounts.models import Membership
    from core.storage.bundles import LocalBundleStore
    from exports import services
    from exports.scope import scope_from_params

    membership = Membership.objects.select_related("organization", "user").get(
        organization__slug="bench"
    )
    params = QueryDict(mutable=True)
    params["batch"] = str(batch_id)
    export, _ = services.export_request(
        membership=membership, scope=scope_from_params(membership, params)
    )
    status = services.build_export(export_id=export.pk)
    export.refresh_from_db()
    if status != "ready":
        sys.exit(f"the build failed: {export.error}")
    return LocalBundleStore().path(export.storage_key)


# --- the variants ---------------------------------------------------------------------------------


def fresh_fd(path: Path) -> int:
    path.unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


Variant = Callable[[list[dict], Path, bool], None]  # (rows, output, fsync)


def run_cat(rows: list[dict], out: Path, fsync: bool) -> None:
    fd = fresh_fd(out)
    try:
        subprocess.run(["cat", *(r["path"] for r in rows)], stdout=fd, check=True)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def run_write_zip(rows: list[dict], out: Path, fsync: bool) -> None:
    fd = fresh_fd(out)
    try:
        write_zip(entries_for(rows), fd)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def run_service(batch_id: int) -> Variant:
    """exports.services.build_export: rows, manifest, names, write_zip, fsync, rename."""

    def build(rows: list[dict], out: Path, fsync: bool) -> None:
        bundle = build_through_service(batch_id)  # fsyncs and renames, like production
        bundle.replace(out)

    return build


def run_zipfile(method: int) -> Variant:
    def build(rows: list[dict], out: Path, fsync: bool) -> None:
        out.unlink(missing_ok=True)
        with out.open("wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=method) as zf:
                zf.writestr("manifest.csv", manifest_for(rows).data or b"")
                for row in rows:
                    zf.write(row["path"], row["name"])
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())

    return build


def drop_caches() -> bool:
    """Empty the page cache so the next run reads from disk; False when not permitted."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    except OSError:
        return False
    return True


def time_variants(
    variants: dict[str, Variant],
    rows: list[dict],
    out: Path,
    *,
    repeat: int,
    cold: bool,
    fsync: bool,
) -> dict[str, list[float]]:
    """Wall seconds of each variant, ``repeat`` times, the order rotating each round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(repeat):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            if cold:
                drop_caches()
            else:
                subprocess.run(["cat", *(r["path"] for r in rows)], stdout=subprocess.DEVNULL)
            start = time.perf_counter()
            variants[name](rows, out, fsync)
            times[name].append(time.perf_counter() - start)
            out.unlink()
            os.sync()  # the deleted output's writeback must not bill the next run
    return times


# --- memory, in a fresh child process -------------------------------------------------------------


def peak_rss() -> int:
    """This process's peak resident set, in bytes.

    /proc's VmHWM starts afresh at exec; getrusage's ru_maxrss does not (a child started from
    a big parent reports the parent's size), so it is only the fallback off Linux.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(spec_path: str) -> None:
    """Build one bundle and print this process's memory as JSON (run by measure_memory)."""
    import tracemalloc

    spec = json.loads(Path(spec_path).read_text())
    if spec["mode"] == "service":
        setup_django(Path(spec["work"]))
    else:
        entries = entries_for(spec["rows"])
    rss_before = peak_rss()
    tracemalloc.start()
    start = time.perf_counter()
    if spec["mode"] == "service":
        bundle = build_through_service(spec["batch"])
        written = bundle.stat().st_size
        bundle.unlink()
    elif spec["mode"] == "write_zip":
        written = write_zip(entries, Path(spec["out"])).bytes_written
    else:
        written = sum(len(chunk) for chunk in iter_zip(entries))  # an upload would send these
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_peak = peak_rss()
    print(
        json.dumps(
            {
                "bytes": written,
                "seconds": seconds,
                "rss_before": rss_before,
                "rss_peak": rss_peak,
                "traced_peak": traced_peak,
            }
        )
    )


def measure_memory(rows: list[dict], mode: str, work: Path, batch: int | None = None) -> dict:
    spec = work / "child.json"
    out = work / "child.zip"
    spec.write_text(
        json.dumps({"rows": rows, "mode": mode, "out": str(out), "work": str(work), "batch": batch})
    )
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(spec)], capture_output=True, text=True
    )
    out.unlink(missing_ok=True)
    if proc.returncode != 0:
        sys.exit(f"child build failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def reuse(rows: list[dict], target: int) -> list[dict]:
    """Rows adding up to about ``target`` bytes, the same files again under other names."""
    picked, total, copy = [], 0, 0
    while total < target:
        for row in rows:
            if total >= target:
                break
            picked.append({**row, "name": f"copy_{copy}/{row['name']}"})
            total += row["size"]
        copy += 1
    return picked


# --- report ---------------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--all", action="store_true", help="stdlib zipfile on the full 1 GiB")
    parser.add_argument("--warm", action="store_true", help="never drop the page cache")
    parser.add_argument("--no-fsync", action="store_true", help="time without fsync (all variants)")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where temp files go")
    parser.add_argument("--big-gib", type=float, default=5.0, help="size of the big RSS bundle")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    need = TOTAL + args.big_gib * GiB + TOTAL  # sources, the big bundle, headroom
    free = shutil.disk_usage(args.dir).free
    if free < need + 2 * GiB:
        sys.exit(f"{args.dir}: {free / GiB:.1f} GiB free, this needs about {need / GiB:.1f}")
    work = Path(tempfile.mkdtemp(prefix="bench_export_", dir=args.dir))
    try:
        src = work / "media" / "outputs" / "bench"
        src.mkdir(parents=True)
        start = time.perf_counter()
        files = make_videos(src)
        made = time.perf_counter() - start
        start = time.perf_counter()
        rows = [
            {"path": str(p), "name": n, "size": p.stat().st_size, "crc": crc32_of(p)}
            for p, n in files
        ]
        crc_seconds = time.perf_counter() - start
        total = sum(r["size"] for r in rows)
        setup_django(work)
        batches = seed(work, rows, args.big_gib)
        cold = not args.warm and drop_caches()
        fs = subprocess.run(
            ["df", "-T", str(work)], capture_output=True, text=True
        ).stdout.splitlines()[-1]
        print(
            f"inputs: {len(rows)} files, {total / GiB:.2f} GiB in {work} (made in {made:.1f} s; "
            f"CRC-32 once, as rendering records it: {crc_seconds:.1f} s)"
        )
        print(
            f"filesystem: {' '.join(fs.split()[:2])}, {free / GiB:.0f} GiB free; cpus: "
            f"{os.cpu_count()}; copy_file_range: {hasattr(os, 'copy_file_range')}"
        )
        print(
            "conditions: fresh output file in the same folder, "
            f"{'no fsync' if args.no_fsync else 'fsync included'}, "
            f"{'page cache dropped before every run' if cold else 'warm page cache'}, "
            f"{args.repeat} rounds, the order alternating"
        )
        out = work / "out.bin"

        main_times = time_variants(
            {
                "cat": run_cat,
                "build_export": run_service(batches["1GiB"]),
                "write_zip": run_write_zip,
            },
            rows,
            out,
            repeat=args.repeat,
            cold=cold,
            fsync=not args.no_fsync,
        )
        subset = rows if args.all else rows[:SUBSET]
        subset_bytes = sum(r["size"] for r in subset)
        slow_times = time_variants(
            {
                "cat": run_cat,
                "zipfile STORED": run_zipfile(zipfile.ZIP_STORED),
                "zipfile DEFLATED": run_zipfile(zipfile.ZIP_DEFLATED),
            },
            subset,
            out,
            repeat=1 if args.all else args.repeat,
            cold=cold,
            fsync=not args.no_fsync,
        )

        print()
        print("wall seconds per run; MB/s and 'x cat' from the medians; 'paired' is the median of")
        print("each round's ratio to the cat run next to it (the disk's noise cancels best there)")
        width = 6 * args.repeat + 2
        print(
            f"{'variant':<36}{'runs (s)':<{width}}{'best':>6}{'median':>8}{'MB/s':>6}"
            f"{'x cat':>7}{'paired':>8}"
        )

        def show(label: str, runs: list[float], size: int, cat_runs: list[float]) -> float:
            mid, cat_mid = statistics.median(runs), statistics.median(cat_runs)
            paired = statistics.median(t / c for t, c in zip(runs, cat_runs, strict=True))
            text = ", ".join(f"{t:.2f}" for t in runs)
            print(
                f"{label:<36}{text:<{width}}{min(runs):>6.2f}{mid:>8.2f}{size / mid / 1e6:>6.0f}"
                f"{mid / cat_mid:>7.2f}{paired:>8.2f}"
            )
            return paired

        show(f"cat, {len(rows)} files", main_times["cat"], total, main_times["cat"])
        ratio = show(
            "build_export (the service)", main_times["build_export"], total, main_times["cat"]
        )
        show("write_zip alone (no rows)", main_times["write_zip"], total, main_times["cat"])
        label = f"{len(subset)} files, {subset_bytes / 1e6:.0f} MB"
        for name in ("cat", "zipfile STORED", "zipfile DEFLATED"):
            show(f"{name}, {label}", slow_times[name], subset_bytes, slow_times["cat"])

        print()
        print("peak memory of one build in a fresh child process (RSS includes the interpreter):")
        sizes = {
            "100 MB": rows[:SUBSET],
            "1 GiB": rows,
            f"{args.big_gib:g} GiB": reuse(rows, int(args.big_gib * GiB)),
        }
        peaks: dict[str, list[int]] = {}
        for mode in ("write_zip", "iter_zip"):
            for label, picked in sizes.items():
                got = measure_memory(picked, mode, work)
                peaks.setdefault(mode, []).append(got["rss_peak"])
                target = "file" if mode == "write_zip" else "discarding sink, 8 MiB chunks"
                print(
                    f"  {mode} -> {target}, {label:>7} ({len(picked) + 1} entries, "
                    f"{got['bytes'] / 1e6:.0f} MB in {got['seconds']:.1f} s): "
                    f"peak RSS {mb(got['rss_peak'])} (at start {mb(got['rss_before'])}), "
                    f"Python allocations peak {got['traced_peak'] / 1e6:.1f} MB"
                )
        service_rss = {}
        for label, key in (("100MB", "100MB"), (f"{args.big_gib:g}GB", "big")):
            got = measure_memory([], "service", work, batches[key])
            service_rss[label] = got["rss_peak"]
            print(
                f"  build_export (Django, rows, manifest, write_zip), {label:>6}: "
                f"{got['bytes'] / 1e6:.0f} MB in {got['seconds']:.1f} s, peak RSS "
                f"{mb(got['rss_peak'])} (at start {mb(got['rss_before'])})"
            )
        print(f"  this process (generation, CRC, stdlib zipfile too): peak RSS {mb(peak_rss())}")
        for mode, values in peaks.items():
            spread = (max(values) - min(values)) / 1e6
            print(
                f"  {mode}: peak RSS {mb(min(values))}..{mb(max(values))} (spread {spread:.1f} MB)"
            )
        print(f"done at {datetime.now():%Y-%m-%d %H:%M:%S}")
        small, big = service_rss.values()
        print(
            f"export/cat wall ratio: {ratio:.2f}  peak RSS 100MB: {small / 1e6:.0f} MB  "
            f"{args.big_gib:g}GB: {big / 1e6:.0f} MB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
