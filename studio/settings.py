"""Settings for Studio: one file, configured through environment variables.

The README's "Configuration" table lists every variable read here.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_str(name: str, default: str | None = None) -> str:
    """Return the variable's value; with no default, a missing or empty value is an error."""
    raw = os.environ.get(name, "")
    if raw:
        return raw
    if default is None:
        raise ImproperlyConfigured(f"{name} must be set")
    return default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """Split a comma-separated variable; a value with no items at all is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} must list at least one comma-separated value")
    return items


DASHSCOPE_BASE_URLS = {
    "ap-southeast-1": "https://dashscope-intl.aliyuncs.com/api/v1",
    "cn-beijing": "https://dashscope.aliyuncs.com/api/v1",
}


def dashscope_base_url(region: str, explicit: str = "") -> str:
    """The API root for a region; an explicit URL (a proxy, the emulator) wins."""
    if region not in DASHSCOPE_BASE_URLS:
        choices = ", ".join(DASHSCOPE_BASE_URLS)
        raise ImproperlyConfigured(f"DASHSCOPE_REGION must be one of {choices}, got {region!r}")
    return explicit or DASHSCOPE_BASE_URLS[region]


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
    "django_q",
    "studio.accounts",
    "studio.generation",
    "studio.gallery",
    "studio.audit",
    "studio.core",
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

DASHSCOPE_API_KEY = env_str("DASHSCOPE_API_KEY", "")
DASHSCOPE_REGION = env_str("DASHSCOPE_REGION", "ap-southeast-1")
DASHSCOPE_BASE_URL = dashscope_base_url(DASHSCOPE_REGION, env_str("DASHSCOPE_BASE_URL", ""))

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
# Jobs one person may submit in any minute: a runaway script or a stuck key stops here.
STUDIO_SUBMITS_PER_MINUTE = env_int("STUDIO_SUBMITS_PER_MINUTE", 60)
# Steps of one job that may start without finishing before the job is failed.
STUDIO_STEP_ATTEMPTS = env_int("STUDIO_STEP_ATTEMPTS", 3)
# How long a job step holds its job; a worker that dies holding it blocks the job this long.
STUDIO_STEP_LEASE_SECONDS = env_int("STUDIO_STEP_LEASE_SECONDS", 90)
# How long a dead dispatcher blocks a new one; longer than a submit's timeouts (35 s).
STUDIO_DISPATCHER_LEASE_SECONDS = env_int("STUDIO_DISPATCHER_LEASE_SECONDS", 45)

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
    "timeout": 60,
    "retry": 150,
    "max_attempts": 3,
    "ack_failures": False,
    "catch_up": False,
    "recycle": 200,
    "max_rss": 400000,
    "save_limit": 1000,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # At INFO, httpx logs every request's full URL, signed query strings included.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
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
