"""Run the web server and the django-q2 clusters (light tasks, renders) in the foreground.

Ctrl-C (or SIGTERM) stops all three; if one exits on its own, the others are stopped too and the
command exits with that status, so a crash is never hidden behind a half-running platform.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server and the task queue worker together (development)."

    def add_arguments(self, parser):
        parser.add_argument(
            "addrport", nargs="?", default=os.environ.get("ADDRPORT", "127.0.0.1:8000")
        )

    def handle(self, *args, addrport, **options):
        manage = [sys.executable, "manage.py"]
        render_env = {**os.environ, "Q_CLUSTER_NAME": settings.RENDER_QUEUE}
        children = {
            "web": subprocess.Popen([*manage, "runserver", addrport, "--noreload"]),
            "worker": subprocess.Popen([*manage, "qcluster"]),
            "render worker": subprocess.Popen([*manage, "qcluster"], env=render_env),
        }
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(
            f"HeyGem Studio on http://{addrport}/ — Ctrl-C stops the web server and both workers."
        )
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                code = child.poll()
                if code is not None:
                    self.stderr.write(f"The {name} process exited with status {code}; stopping.")
                    exit_code, stopping = code or 1, True
                    break
            time.sleep(0.3)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(exit_code)
