"""Reading the studio's configuration from environment variables, and the settings that
are worked out from several of them (the provider's API root, S3 storage and its origins).

Kept apart from settings.py so the rules can be tested and reused without loading settings.
"""

import os
from urllib.parse import urlsplit

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

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
    """A whole number; unset or empty (`NAME=` in a .env file) is the default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """Split a comma-separated variable. Unset or empty (`NAME=` in a .env file) is the
    default; commas with nothing between them (" , ") are an error."""
    raw = os.environ.get(name, "")
    if not raw.strip():
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


def s3_storage(
    *,
    bucket: str,
    endpoint_url: str = "",
    region: str = "",
    access_key_id: str = "",
    secret_access_key: str = "",
    url_seconds: int = 300,
    addressing_style: str = "auto",
) -> dict[str, object]:
    """The STORAGES entry for a bucket on an S3-compatible service."""
    if addressing_style not in ("auto", "path", "virtual"):
        raise ImproperlyConfigured(
            f"STUDIO_S3_ADDRESSING_STYLE must be auto, path or virtual, got {addressing_style!r}"
        )
    if not 0 < url_seconds <= 7 * 86400:  # SigV4's longest is a week
        raise ImproperlyConfigured(
            f"STUDIO_S3_URL_SECONDS must be between 1 and 604800, got {url_seconds}"
        )
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            "access_key": access_key_id or None,
            "secret_key": secret_access_key or None,
            # Every URL is signed and short-lived; no object is ever made public (the
            # bucket's own private default applies).
            "querystring_auth": True,
            "querystring_expire": url_seconds,
            "default_acl": None,
            # As on the filesystem: a retried download replaces its own object.
            "file_overwrite": True,
            "client_config": Config(
                s3={"addressing_style": None if addressing_style == "auto" else addressing_style},
                signature_version="s3v4",
                # A bucket that does not answer fails a save within about a minute, which
                # holds the job's download, instead of hanging past the worker's task
                # timeout (botocore's defaults: 60 s to connect, 5 tries), which kills it.
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        },
    }


def s3_origins(
    *, bucket: str, endpoint_url: str = "", region: str = "", addressing_style: str = "auto"
) -> list[str]:
    """The origins presigned URLs point at, for the policy's img-src: images follow the
    views' redirects there. Path style keeps the endpoint's host; virtual style puts the
    bucket in front of it; auto may give either."""
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        scheme, host = parts.scheme, parts.netloc
    else:
        scheme = "https"
        host = f"s3.{region}.amazonaws.com" if region else "s3.amazonaws.com"
    hosts = []
    if addressing_style in ("auto", "path"):
        hosts.append(host)
    if addressing_style in ("auto", "virtual"):
        hosts.append(f"{bucket}.{host}")
        if not endpoint_url:
            # boto3 signs auto-style URLs for AWS with the bucket's global name.
            hosts.append(f"{bucket}.s3.amazonaws.com")
    return [f"{scheme}://{h}" for h in dict.fromkeys(hosts)]
