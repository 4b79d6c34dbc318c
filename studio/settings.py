"""Settings for Studio: one file, configured through environment variables.

The README's "Configuration" table lists every variable read here.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from studio.dashscope.client import DEFAULT_RESULT_HOSTS, host_rule
from studio.environment import (
    dashscope_base_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    s3_origins,
    s3_storage,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-not-secret" if DEBUG else None)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "studio.accounts",
    "studio.generation",
    "studio.gallery",
    "studio.audit",
    "studio.notifications",
    "studio.api",
    "ninja",  # the API's docs page, from its own static files
    "studio.core",
    # After studio.generation, whose `qcluster` (a graceful stop, a heartbeat) replaces this one's.
    "django_q",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# --- Security baseline. ---
# Scripts come only from our own static files: no inline script, no eval (htmx is told not
# to evaluate expressions; see base.html). Styles may be inline: the regions drawn over
# images are placed with style attributes. Views that serve image files set their own,
# stricter policy, which the middleware leaves in place.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Behind a TLS-terminating proxy in production (DJANGO_SECURE=true): redirect to https,
# trust the proxy's X-Forwarded-Proto, and keep cookies and HSTS to https.
SECURE = env_bool("DJANGO_SECURE", False)
SECURE_SSL_REDIRECT = SECURE and env_bool("DJANGO_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE and env_bool("DJANGO_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Login lockout (django-axes), counted in the database so every web process shares it.
# Failures count per username, from whichever address they come: a password guessed from
# many addresses is stopped all the same, where counting per username and address would
# give a botnet that many tries per address. Counting per address alone would let one
# person's mistakes lock out a whole office behind one address. The price: someone who
# knows a username can keep its owner locked out; staff unlock in the admin (Access
# attempts). The admin's login is covered too; a successful login starts the count again.
STUDIO_LOGIN_FAILURES = env_int("STUDIO_LOGIN_FAILURES", 5)
STUDIO_LOGIN_LOCKOUT_MINUTES = env_int("STUDIO_LOGIN_LOCKOUT_MINUTES", 15)
# One address trying many usernames, each under its own limit, is refused after this many
# failures within the lockout's length (studio.accounts.addresses): far above what an
# office's typos behind one address add up to.
STUDIO_LOGIN_ADDRESS_FAILURES = env_int("STUDIO_LOGIN_ADDRESS_FAILURES", 50)
# Reverse proxies in front of the web processes that append to X-Forwarded-For; the client's
# address is read from there (studio.http.client_address: for the lockouts and the audit
# log) only when this is set.
STUDIO_TRUSTED_PROXIES = env_int("STUDIO_TRUSTED_PROXIES", 0)
AUTHENTICATION_BACKENDS = [
    "studio.accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = STUDIO_LOGIN_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=STUDIO_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
# Tries while locked out do not push the end back, so the time the page gives holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "studio.accounts.views.locked_out"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
AXES_CLIENT_IP_CALLABLE = "studio.http.client_address"
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # one row per failure: the per-address count
# axes.W006 warns that a lockout without the address can be dodged by changing user agent
# or cookies: true when those are part of what is counted, not of the username alone.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

# template_partials rewrites the loaders at startup, so APP_DIRS is all we set here.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "studio.accounts.context_processors.current_team",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The django-q2 ORM broker and its workers write concurrently: take the write lock at
    # BEGIN and wait for it, instead of failing with "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    # A file, not shared-cache memory, for the test database: concurrency tests need
    # SQLite's real locking, which honours the timeout above.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# The manifest storage needs a prior collectstatic, or every {% static %} fails: only the
# Docker image (which runs collectstatic at build) turns it on.
STORAGES = {
    # Overwriting, not renaming: a retried download replaces its own file instead of
    # leaving a suffixed duplicate beside it.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"allow_overwrite": True},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("STATIC_MANIFEST", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    },
}
MEDIA_ROOT = Path(env_str("STUDIO_MEDIA_ROOT", str(BASE_DIR / "media")))

# --- Media on S3-compatible storage (AWS S3, Alibaba OSS, MinIO), when a bucket is named. ---
# Objects stay private: the browser reaches a file only through the access-checked views,
# which answer with a presigned URL that lapses after STUDIO_S3_URL_SECONDS. Keys left
# unset fall back to boto3's own chain (instance roles, AWS_* variables).


STUDIO_S3_BUCKET = env_str("STUDIO_S3_BUCKET", "")
if STUDIO_S3_BUCKET:
    _s3 = {
        "bucket": STUDIO_S3_BUCKET,
        "endpoint_url": env_str("STUDIO_S3_ENDPOINT_URL", ""),
        "region": env_str("STUDIO_S3_REGION", ""),
        "addressing_style": env_str("STUDIO_S3_ADDRESSING_STYLE", "auto"),
    }
    STORAGES["default"] = s3_storage(
        **_s3,
        access_key_id=env_str("STUDIO_S3_ACCESS_KEY_ID", ""),
        secret_access_key=env_str("STUDIO_S3_SECRET_ACCESS_KEY", ""),
        url_seconds=env_int("STUDIO_S3_URL_SECONDS", 300),
    )
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] += s3_origins(**_s3)

DASHSCOPE_API_KEY = env_str("DASHSCOPE_API_KEY", "")
DASHSCOPE_REGION = env_str("DASHSCOPE_REGION", "ap-southeast-1")
DASHSCOPE_BASE_URL = dashscope_base_url(DASHSCOPE_REGION, env_str("DASHSCOPE_BASE_URL", ""))
# Hosts the provider's result URLs may name (patterns; `*` is part of one label). Add a
# pattern here when the provider starts handing out results from a new kind of bucket.
STUDIO_RESULT_HOSTS = env_list("STUDIO_RESULT_HOSTS", list(DEFAULT_RESULT_HOSTS))
try:
    host_rule(STUDIO_RESULT_HOSTS)
except ValueError as exc:
    raise ImproperlyConfigured(f"STUDIO_RESULT_HOSTS: {exc}") from None
# The emulator stands in for the provider (`make run` without a key, the tests, the demo):
# result hosts are routed to it, over TLS from its own authority. Never with the real service.
DASHSCOPE_EMULATED = env_bool("DASHSCOPE_EMULATED", False)
_api_host = (urlsplit(DASHSCOPE_BASE_URL).hostname or "").rstrip(".")
if DASHSCOPE_EMULATED and (_api_host == "aliyuncs.com" or _api_host.endswith(".aliyuncs.com")):
    raise ImproperlyConfigured(
        "DASHSCOPE_EMULATED routes result downloads to the emulator; it cannot be set "
        f"with the real service at {DASHSCOPE_BASE_URL}."
    )

# The provider's limits, which every worker process together keeps to. The emulator's
# defaults are the same numbers.
STUDIO_PROVIDER_RUNNING_PER_MODEL = env_int("STUDIO_PROVIDER_RUNNING_PER_MODEL", 2)
STUDIO_PROVIDER_SUBMITS_PER_SECOND = env_int("STUDIO_PROVIDER_SUBMITS_PER_SECOND", 2)
STUDIO_PROVIDER_QUERIES_PER_SECOND = env_int("STUDIO_PROVIDER_QUERIES_PER_SECOND", 20)
# Tasks sent ahead to wait at the provider, which starts them the moment a slot frees.
STUDIO_PROVIDER_QUEUE_AHEAD = env_int(
    "STUDIO_PROVIDER_QUEUE_AHEAD", STUDIO_PROVIDER_RUNNING_PER_MODEL
)
# A job still waiting this long after it was submitted is timed out (and watched on).
STUDIO_JOB_TIMEOUT_SECONDS = env_int("STUDIO_JOB_TIMEOUT_SECONDS", 120)
# A job the provider keeps turning away (busy, or failing) is failed after this long, with
# nothing charged, rather than left waiting in the queue without end.
STUDIO_PROVIDER_BUSY_GIVE_UP_SECONDS = env_int("STUDIO_PROVIDER_BUSY_GIVE_UP_SECONDS", 1800)
# Jobs one person may submit in any minute: a runaway script or a stuck key stops here.
STUDIO_SUBMITS_PER_MINUTE = env_int("STUDIO_SUBMITS_PER_MINUTE", 60)
# Steps of one job that may start without finishing before the job is failed.
STUDIO_STEP_ATTEMPTS = env_int("STUDIO_STEP_ATTEMPTS", 3)
# How long a job step holds its job; a worker that dies holding it blocks the job this long.
STUDIO_STEP_LEASE_SECONDS = env_int("STUDIO_STEP_LEASE_SECONDS", 90)
# A piece of mixed text and images is read as it streams: for at most this long, and given
# up if the provider sends nothing for the second setting. Within a job step's 180 s.
STUDIO_STREAM_DEADLINE_SECONDS = env_int("STUDIO_STREAM_DEADLINE_SECONDS", 150)
STUDIO_STREAM_STALL_SECONDS = env_int("STUDIO_STREAM_STALL_SECONDS", 60)
# How long a dead dispatcher blocks a new one; longer than a submit's timeouts (35 s).
STUDIO_DISPATCHER_LEASE_SECONDS = env_int("STUDIO_DISPATCHER_LEASE_SECONDS", 45)
# How often each worker cluster writes its heartbeat; three silent intervals mean it is down.
STUDIO_WORKER_HEARTBEAT_SECONDS = env_int("STUDIO_WORKER_HEARTBEAT_SECONDS", 10)
# A held download (made, not storable yet) is tried again after as long as it has been held,
# at least the first and at most the longest pause, until the provider's URLs expire; the
# dispatcher looks for held jobs due this often.
STUDIO_DOWNLOAD_HOLD_FIRST_SECONDS = env_int("STUDIO_DOWNLOAD_HOLD_FIRST_SECONDS", 60)
STUDIO_DOWNLOAD_HOLD_LONGEST_SECONDS = env_int("STUDIO_DOWNLOAD_HOLD_LONGEST_SECONDS", 1800)
STUDIO_DOWNLOAD_HOLD_CHECK_SECONDS = env_int("STUDIO_DOWNLOAD_HOLD_CHECK_SECONDS", 15)

# The studio's own address, for links in emails (which reach people outside any request).
STUDIO_BASE_URL = env_str("STUDIO_BASE_URL", "http://localhost:8000")

# Email (notification digests, sent by the worker): SMTP when EMAIL_HOST is set; otherwise
# each message is written to the worker's console.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Studio <studio@localhost>")

# One cache for the web and worker processes: the worker asks whether a job's author is
# watching it (studio.notifications.watching). The table is made by a migration.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "studio_cache",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }
}

# django-q2 with the ORM broker: no Redis, and the admin shows queued and failed tasks.
# `retry` must exceed `timeout`, or a task still running is handed to a second worker.
# `queue_limit` equal to `workers` keeps prefetched tasks from waiting in the cluster's
# internal queue until `retry` expires and being delivered a second time.
Q_CLUSTER = {
    "name": "studio",
    "orm": "default",
    # The dispatcher holds one worker while jobs are open; the others run job steps.
    "workers": 6,
    "queue_limit": 6,
    "bulk": 1,
    "poll": 0.1,
    # Longer than the longest task: a sync generation (up to 180 s) with its downloads,
    # or a dispatcher slice (40 s) waiting for the downloads it began. A task past this is
    # killed, which the job counts as a crash.
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "ack_failures": False,
    "catch_up": False,
    "recycle": 200,
    "max_rss": 400000,
    "save_limit": 1000,
}

# "json" for a log collector: one object per line, with the job id (studio.logs) on every
# line the worker writes while it acts on a job. "plain" shows the id as job=<id>.
STUDIO_LOG_FORMAT = env_str("STUDIO_LOG_FORMAT", "plain")
if STUDIO_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(
        f"STUDIO_LOG_FORMAT must be plain or json, got {STUDIO_LOG_FORMAT!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"log_context": {"()": "studio.logs.LogContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(job_label)s: %(message)s"},
        "json": {"()": "studio.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": STUDIO_LOG_FORMAT,
            "filters": ["log_context"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # At INFO, httpx logs every request's full URL, signed query strings included.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # The S3 client narrates each request, its canonical form and signature, at DEBUG.
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "s3transfer": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # Pillow narrates every PNG chunk at DEBUG.
        "PIL": {"level": "INFO"},
        "studio": {"level": "INFO"},
        # The worker reports starting, stopping and failed tasks at INFO.
        "django-q": {"level": "INFO"},
        # Django's default config gives "django" a console handler of its own; without this,
        # its records would print twice, once there and once through the root handler.
        "django": {"handlers": [], "level": "INFO"},
    },
}

# --- Log redaction: scrub API keys and URL signatures from every log record. ---
from studio.dashscope.redaction import install_log_redaction  # noqa: E402

install_log_redaction()
