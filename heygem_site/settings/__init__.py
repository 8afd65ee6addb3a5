"""Settings for every environment, read from environment variables (see heygem_site/env.py).

A fresh clone runs with no configuration: SQLite under var/, the django-q2 ORM broker, local
media, console e-mail. ``DJANGO_ENV=production`` demands SECRET_KEY and ALLOWED_HOSTS, refuses
DEBUG and turns on secure cookies, HSTS and the HTTPS redirect.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from heygem_site.env import env, environment_name, installation_secret

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DJANGO_ENV = environment_name()
PRODUCTION = DJANGO_ENV == "production"
TESTING = DJANGO_ENV == "test"

VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))

# Development: a secret of this installation, made on first run and kept in VAR_DIR (never in
# the repository). Tests: a fixed one, so the qclusters they start can read their tasks.
SECRET_KEY = env("SECRET_KEY", "", required_in_production=True)
if PRODUCTION and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be a real secret (32+ characters) in production.")
if not SECRET_KEY:
    SECRET_KEY = (
        "test-only-secret-key-not-for-any-installation" if TESTING else installation_secret(VAR_DIR)
    )
# Friendly error pages unless asked (DEBUG=true): Django's debug page lists every URL
# pattern and shows tracebacks to whoever hits an error.
DEBUG = env("DEBUG", False, cast=bool)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must not be on when DJANGO_ENV=production.")
ALLOWED_HOSTS = env(
    "ALLOWED_HOSTS",
    ["localhost", "127.0.0.1", "[::1]", "testserver"],
    cast=list,
    required_in_production=True,
)
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS", [], cast=list)
# Behind one reverse proxy (nginx): the client address is the last X-Forwarded-For entry, the
# one the proxy appended (core.http.client_ip). Leave off when clients connect directly.
USE_X_FORWARDED_FOR = env("USE_X_FORWARDED_FOR", False, cast=bool)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "heygem_site",
    "accounts",
    "jobs",
    "exports",
]

MIDDLEWARE = [
    "heygem_site.health.HealthMiddleware",  # /healthz, /readyz: before host checks and redirects
    "django.middleware.security.SecurityMiddleware",
    "heygem_site.middleware.SecurityHeadersMiddleware",
    "heygem_site.middleware.RequestTooLargeMiddleware",  # before anything reads the body
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.preferences.UserPreferencesMiddleware",  # language and time zone of the person
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "heygem_site.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "heygem_site.urls"
WSGI_APPLICATION = "heygem_site.wsgi.application"
ASGI_APPLICATION = "heygem_site.asgi.application"

# The dashboard's pages are Jinja2 (compiled to Python; rendering was most of a list page's
# time under Django's language): heygem_site/templating.py. Django's engine stays for the
# templates of installed apps (REST framework's browsable API, the API docs, form widgets).
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "heygem_site.templating.environment",
            "context_processors": [
                "heygem_site.templating.csrf",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.tenancy",
            ],
        },
    },
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "heygem.sqlite3"
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent connections (CONN_MAX_AGE 60, as for PostgreSQL): opening one costs ~0.7 ms
    # (the PRAGMAs below, Django's SQL functions, the schema read) and an open one keeps its
    # page cache, on every request. Safe here because a connection never crosses a fork or a
    # thread: Django keeps one per thread; gunicorn forks its workers before the app opens
    # any; django-q2 closes all connections before it forks a worker; runserver closes each
    # request thread's own. The OPTIONS apply to every connection, so a reused one is in WAL,
    # IMMEDIATE, busy-timeout mode like a new one. Django never finds an SQLite connection
    # unusable, so one opened before the file was replaced lives on for up to 60 s: restore
    # a backup with the web server and the workers stopped.
    DATABASES["default"]["OPTIONS"] = {
        # Writers queue up instead of failing at once, and every transaction takes the write
        # lock when it begins, so read-then-write sequences (the audit chain head) never race.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;"
        ),
    }
    # A file, not :memory:, so a real qcluster process can share the test database; one per
    # test run, so two runs on one machine never share (and clobber) it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and queue ------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "heygem_cache",
        }
    }
if TESTING:
    # Test runs (and xdist workers) share one Redis database: keep their counters apart.
    CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}-{secrets.token_hex(4)}"

from heygem_site.queue import q_cluster_settings  # noqa: E402

# The render cluster's queue; tests running side by side give each run its own.
RENDER_QUEUE = env("Q_RENDER_QUEUE", "render")
Q_CLUSTER = q_cluster_settings(redis_url=REDIS_URL, render_queue=RENDER_QUEUE, testing=TESTING)

# --- auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out (e-mail, address) pair before any password check.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "accounts.backends.EmailBackend"]
AXES_ENABLED = env("LOGIN_LOCKOUT", True, cast=bool)
AXES_FAILURE_LIMIT = env("LOGIN_FAILURE_LIMIT", 5, cast=int)
AXES_COOLOFF_TIME = env("LOGIN_COOLOFF_MINUTES", 15, cast=float) / 60  # hours
# Lock the e-mail from that address: a guesser elsewhere cannot lock a person out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.backends.login_name"
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
INVITATION_TTL_HOURS = env("INVITATION_TTL_HOURS", 72, cast=int)
API_TOKEN_MAX_DAYS = env("API_TOKEN_MAX_DAYS", 365, cast=int)

# --- i18n -----------------------------------------------------------------------------------
# English and Simplified Chinese (docs/i18n.md): a person's saved language, else the cookie the
# switch sets, else the browser's Accept-Language, else English (accounts/preferences.py).
# Catalogues: <app>/locale and locale/ (site-wide templates, core), made by `manage.py messages`.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "heygem_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Storage is UTC; each person sees times in their own zone (User.time_zone, preset from the
# browser on first login). TIME_ZONE is the zone for people who have none yet.
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- files ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
EXPORT_ROOT = Path(env("EXPORT_ROOT", str(VAR_DIR / "exports")))
# Media (assets, rendered videos, thumbnails): a local folder, or an S3-compatible bucket that
# web servers and render workers on several hosts share (core/storage/media.py).
MEDIA_STORAGE = env("MEDIA_STORAGE", "local")
if MEDIA_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured("MEDIA_STORAGE must be 'local' or 's3'.")
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET", "", required_in_production=MEDIA_STORAGE == "s3")
MEDIA_S3_ENDPOINT_URL = env("MEDIA_S3_ENDPOINT_URL", "")
MEDIA_S3_REGION = env("MEDIA_S3_REGION", "us-east-1")
MEDIA_S3_PREFIX = env("MEDIA_S3_PREFIX", "media/")
MEDIA_PRESIGN_SECONDS = env("MEDIA_PRESIGN_SECONDS", 600, cast=int)
if MEDIA_STORAGE == "s3" and not MEDIA_S3_BUCKET:
    raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET.")
# Each render attempt works in its own folder here (inputs fetched from S3, the video being
# written); removed when the attempt ends. Keep it on local disk, one per host.
RENDER_SCRATCH_DIR = Path(env("RENDER_SCRATCH_DIR", str(VAR_DIR / "scratch")))
FFMPEG_BINARY = env("FFMPEG_BINARY", "")
INFERENCE_DEVICE = env("INFERENCE_DEVICE", "")

# --- uploads and rendering -------------------------------------------------------------
# Uploads always go to a temp file on disk (never memory) and are cut off past the limit.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_HANDLERS = ["jobs.uploads.LimitedTemporaryFileUploadHandler"]
DATA_UPLOAD_MAX_NUMBER_FILES = env("UPLOAD_MAX_FILES", 200, cast=int)
UPLOAD_MAX_REQUEST_BYTES = env("UPLOAD_MAX_REQUEST_BYTES", 2 * 1024**3, cast=int)
ASSET_MAX_BYTES = env("ASSET_MAX_BYTES", 500 * 1024 * 1024, cast=int)
ASSET_MAX_VIDEO_SECONDS = env("ASSET_MAX_VIDEO_SECONDS", 600, cast=float)
ASSET_MAX_AUDIO_SECONDS = env("ASSET_MAX_AUDIO_SECONDS", 1800, cast=float)
ASSET_MAX_WIDTH = env("ASSET_MAX_WIDTH", 3840, cast=int)
ASSET_MAX_HEIGHT = env("ASSET_MAX_HEIGHT", 2160, cast=int)
BATCH_MAX_JOBS = env("BATCH_MAX_JOBS", 1000, cast=int)
RENDER_MAX_ATTEMPTS = env("RENDER_MAX_ATTEMPTS", 3, cast=int)
RENDER_TIME_LIMIT_S = env("RENDER_TIME_LIMIT_S", 3600, cast=int)
RENDER_LEASE_S = env("RENDER_LEASE_S", 120, cast=int)
RENDER_BATCH_SIZE = env("RENDER_BATCH_SIZE", 16, cast=int)
WAV2LIP_CHECKPOINT = env("WAV2LIP_CHECKPOINT", "")
# MuseTalk 1.5 in its release layout: musetalkV15/ (unet.pth, musetalk.json), sd-vae/, whisper/
MUSETALK_DIR = env("MUSETALK_DIR", "")

# --- speech (scripts spoken by a voice, inference/tts) -------------------------------------
# espeak-ng (English and Mandarin) is found on PATH unless TTS_ESPEAK_BINARY names it; Piper
# voices are the operator's models (<name>.onnx + <name>.onnx.json) in TTS_PIPER_VOICES_DIR.
TTS_ESPEAK_BINARY = env("TTS_ESPEAK_BINARY", "")
TTS_PIPER_VOICES_DIR = env("TTS_PIPER_VOICES_DIR", "")
# Longest script one video may speak, in characters.
TTS_MAX_CHARS = env("TTS_MAX_CHARS", 5000, cast=int)

# --- exports (ZIP bundles) -----------------------------------------------------------------
EXPORT_MAX_ACTIVE_PER_ORG = env("EXPORT_MAX_ACTIVE_PER_ORG", 2, cast=int)
EXPORT_SOFT_LIMIT_S = env("EXPORT_SOFT_LIMIT_S", 300, cast=int)
EXPORT_HARD_LIMIT_S = env("EXPORT_HARD_LIMIT_S", 3600, cast=int)
# A build that shows no sign of life for this long lost its worker: it is built once more,
# then failed with a reason (EXPORT_MAX_ATTEMPTS builds in all).
EXPORT_LEASE_S = env("EXPORT_LEASE_S", 300, cast=int)
EXPORT_MAX_ATTEMPTS = env("EXPORT_MAX_ATTEMPTS", 2, cast=int)
EXPORT_TTL_HOURS = env("EXPORT_TTL_HOURS", 24, cast=float)
EXPORT_STORAGE = env("EXPORT_STORAGE", "local")
if EXPORT_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured("EXPORT_STORAGE must be 'local' or 's3'.")
EXPORT_S3_BUCKET = env("EXPORT_S3_BUCKET", "", required_in_production=EXPORT_STORAGE == "s3")
EXPORT_S3_ENDPOINT_URL = env("EXPORT_S3_ENDPOINT_URL", "")
EXPORT_S3_REGION = env("EXPORT_S3_REGION", "us-east-1")
EXPORT_S3_PREFIX = env("EXPORT_S3_PREFIX", "exports/")
EXPORT_S3_PART_BYTES = env("EXPORT_S3_PART_BYTES", 16 * 1024 * 1024, cast=int)
EXPORT_PRESIGN_SECONDS = env("EXPORT_PRESIGN_SECONDS", 300, cast=int)
# nginx: serve bundles with X-Accel-Redirect from this internal location (e.g. /_bundles/).
EXPORT_X_ACCEL_PREFIX = env("EXPORT_X_ACCEL_PREFIX", "")
if EXPORT_STORAGE == "s3" and not EXPORT_S3_BUCKET:
    raise ImproperlyConfigured("EXPORT_STORAGE=s3 needs EXPORT_S3_BUCKET.")

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HeyGem Studio API",
    "DESCRIPTION": "Submit lip-sync batches, follow them and fetch ZIP bundles, per organization.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
API_THROTTLE_TOKEN = env("API_THROTTLE_TOKEN", "600/min")
API_THROTTLE_IP = env("API_THROTTLE_IP", "300/min")
# Per user, pages and API together (exports/budgets.py); empty turns a limit off.
EXPORT_REQUEST_RATE = env("EXPORT_REQUEST_RATE", "60/hour")
EXPORT_DOWNLOAD_RATE = env("EXPORT_DOWNLOAD_RATE", "600/hour")
WEBHOOK_ALLOW_PRIVATE = env("WEBHOOK_ALLOW_PRIVATE", False, cast=bool)
WEBHOOK_MAX_ATTEMPTS = env("WEBHOOK_MAX_ATTEMPTS", 6, cast=int)
WEBHOOK_TIMEOUT_S = env("WEBHOOK_TIMEOUT_S", 10, cast=float)
WEBHOOK_RETRY_BASE_S = env("WEBHOOK_RETRY_BASE_S", 30, cast=float)

# --- e-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env("EMAIL_PORT", 25, cast=int)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env("EMAIL_USE_TLS", False, cast=bool)
EMAIL_USE_SSL = env("EMAIL_USE_SSL", False, cast=bool)
# Mail is sent by the workers after their work is saved: a slow SMTP server must not hold one.
EMAIL_TIMEOUT = env("EMAIL_TIMEOUT", 10, cast=int)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both.")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "HeyGem Studio <noreply@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# The site's public address: links in e-mails and webhooks are built from it.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000")
# How often an open tab asks for the unread count of the header badge (only while visible).
NOTIFICATION_POLL_MS = env("NOTIFICATION_POLL_MS", 15_000, cast=int)

# --- security -------------------------------------------------------------------------------
# With Redis, sessions are read from the cache (written through to the database, so a Redis
# restart logs nobody out): one query less per page. Without it the cache is a database
# table, and reading it first would be one query more.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if REDIS_URL
    else "django.contrib.sessions.backends.db"
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT", True, cast=bool)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS", 31536000, cast=int)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- logging --------------------------------------------------------------------------------
LOG_DIR = Path(env("LOG_DIR", str(VAR_DIR / "log")))
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOG_DIR.mkdir(parents=True, exist_ok=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # Every process of a host appends to this one file, so none of them may rotate it
        # (each would rename it under the others, and lines end up in a deleted file):
        # logrotate does (docs/deploy/logrotate-heygem), and each process reopens the file
        # when it sees it was moved.
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(LOG_DIR / "heygem.log"),
            "formatter": "plain",
            "delay": True,
        },
    },
    "root": {"handlers": ["console", "file"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django-q": {"level": env("Q_LOG_LEVEL", "INFO")},  # django-q2 logs under this name
    },
}
