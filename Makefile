# HeyGem Studio — the two commands a newcomer runs:
#   make run    install everything, then run the platform (web + worker) on embedded defaults
#   make test   install everything, then run the whole test suite (both stacks) and the checks
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
ADDRPORT ?= 127.0.0.1:8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
PYTEST_WORKERS ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup system-deps face-models test-deps run migrate test lint test-embedded test-scaleout lock clean

help:
	@echo "make run    - set up and run the platform on http://$(ADDRPORT)/ (Ctrl-C stops it)"
	@echo "make test   - set up and run lint, checks and the whole test suite on both stacks"

# --- setup ----------------------------------------------------------------------------------
# Debian packages the platform runs on: ffmpeg, espeak-ng (the default text-to-speech voices)
# and Noto CJK (the font of burned-in Chinese subtitles). Only what is missing is installed.
system-deps:
	@missing=""; \
	{ command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; } || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || fc-list 2>/dev/null | grep -q "Noto Sans CJK" \
	  || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "== installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    echo "== installing Debian packages:$$missing"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "== apt is not usable, so these stay missing:$$missing"; \
	    echo "   (ffmpeg: the binary from imageio-ffmpeg is used; espeak-ng: no script voices;"; \
	    echo "   fonts-noto-cjk: burned-in Chinese subtitles have no font to draw with)"; \
	  fi; \
	fi

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 not found)"; exit 1; }
	@test -x $(PY) || { echo "== creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "== installing Python packages (pinned) into $(VENV)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# axe-core from the npm registry (pinned in tests/browser/axe/package-lock.json): the browser
# tests run it on every page. Node.js and npm from Debian where the machine has none.
AXE := tests/browser/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/axe/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  echo "== installing Debian's nodejs and npm (for axe-core)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; fi; \
	fi
	@echo "== installing axe-core for the browser tests"
	@npm ci --prefix tests/browser/axe --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

# Tools the test suite opens bundles with, Chromium for the browser tests, logrotate to
# check the shipped rotation file, and espeak-ng for real speech in the engine tests.
TEST_DEBS := unzip p7zip-full libarchive-tools chromium fonts-noto-cjk fonts-noto-color-emoji logrotate espeak-ng
test-deps: $(AXE)
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "== installing Debian packages for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "The tests need these Debian packages:$$missing (apt-get install them)"; exit 1; \
	  fi; \
	fi

# MediaPipe's face detector and mesh, taken from the mediapipe wheel on PyPI and checked by
# SHA-256 (inference/face/install.py); a no-op when they are already there.
face-models: $(STAMP)
	@$(PY) -m inference.face.install

setup: system-deps $(STAMP) face-models

migrate: setup
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py createcachetable

# --- the platform ---------------------------------------------------------------------------
run: migrate
	@$(PY) manage.py seed_demo
	@$(PY) manage.py rundev $(ADDRPORT)

# --- the tests ------------------------------------------------------------------------------
lint: setup
	@echo "== ruff, import layers, migrations, message catalogues, deploy check"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache
	@DJANGO_ENV=test $(PY) manage.py makemigrations --check --dry-run
	@DJANGO_ENV=test $(PY) manage.py messages check
	@DJANGO_ENV=production SECRET_KEY=ci-only-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=') \
	  ALLOWED_HOSTS=heygem.example.com VAR_DIR=$$(mktemp -d) \
	  $(PY) manage.py check --deploy --fail-level WARNING

test-embedded: setup test-deps
	@echo "== pass 1/2: embedded stack (SQLite, django-q2 ORM broker, local media)"
	@env -u DATABASE_URL -u REDIS_URL -u HEYGEM_TEST_STORAGE DJANGO_ENV=test \
	  $(VENV)/bin/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

test-scaleout: setup test-deps
	@if $(PY) -c "import socket,sys; [socket.create_connection(('127.0.0.1',p),2).close() for p in (5432,6379)]" 2>/dev/null; then \
	  echo "== pass 2/2: scale-out stack (PostgreSQL, Redis broker, media and bundles in S3 on a moto_server the run starts)"; \
	  DJANGO_ENV=test DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) HEYGEM_TEST_STORAGE=s3 \
	    $(VENV)/bin/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider -m "not bigzip"; \
	elif [ "$$CI" = "true" ]; then \
	  echo "== pass 2/2 FAILED: PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is not reachable, and CI=true requires the scale-out pass"; \
	  exit 1; \
	else \
	  echo "== pass 2/2 SKIPPED: PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is not reachable on this machine."; \
	  echo "   The scale-out pass did not run; CI runs it."; \
	fi

test: lint test-embedded test-scaleout
	@echo "== all checks passed"

# --- maintenance ----------------------------------------------------------------------------
# Re-pin requirements.txt / requirements-dev.txt from the top-level lists in requirements*.in.
lock:
	rm -rf var/lockvenv && $(PYTHON) -m venv var/lockvenv
	var/lockvenv/bin/pip install -q -r requirements.in
	{ echo "# Pinned by 'make lock' from requirements.in."; \
	  var/lockvenv/bin/pip freeze | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > requirements.txt
	var/lockvenv/bin/pip install -q -r requirements-dev.in
	{ echo "# Pinned by 'make lock' from requirements-dev.in."; echo "-r requirements.txt"; \
	  var/lockvenv/bin/pip freeze | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' \
	    | grep -vxFf requirements.txt; } > requirements-dev.txt
	rm -rf var/lockvenv

clean:
	rm -rf var/test*.sqlite3* .pytest_cache .ruff_cache
