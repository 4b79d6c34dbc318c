"""A private S3 bucket on localhost for the media-store tests: moto's S3 server behind the
rules of a private bucket that moto leaves out (a request must be signed, and a presigned
URL holds only as it was signed and only until it lapses).

Without moto the tests that need the endpoint are skipped, unless STUDIO_REQUIRE_S3=1
(CI), where a missing moto is a failure. The endpoint starts once per test run.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from studio.settings import s3_origins, s3_storage

ACCESS_KEY_ID = "STUDIOTESTKEY"
SECRET_ACCESS_KEY = "studio-test-secret-access-key"
REGION = "us-east-1"


def _require_moto() -> None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        if os.environ.get("STUDIO_REQUIRE_S3") == "1":
            pytest.fail("The S3 storage tests are required here, but moto is not installed.")
        pytest.skip("S3 storage tests skipped: moto is not installed (pip install -e '.[dev]').")


# -- The endpoint -------------------------------------------------------------------------


def _refusal(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(
        "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


class PrivateBucket:
    """What S3 enforces on a private bucket and moto's server does not: anonymous requests
    are refused, and a presigned URL must carry a valid SigV4 signature over its own
    lifetime and be used before that lifetime runs out."""

    def __init__(self, app: Callable[..., Iterable[bytes]], secrets: dict[str, str]) -> None:
        self.app = app
        self.secrets = secrets

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if "X-Amz-Signature" in query:
            refusal = self._check_presigned(environ, query)
        elif "HTTP_AUTHORIZATION" not in environ:
            refusal = ("AccessDenied", "Access Denied")
        else:
            refusal = None  # signed in its headers, as boto3 signs the studio's own requests
        if refusal:
            return _refusal(start_response, *refusal)
        return self.app(environ, start_response)

    def _check_presigned(self, environ: dict[str, Any], query: dict[str, str]) -> Any:
        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        key_id, _day, region, service, _ = query["X-Amz-Credential"].split("/")
        lifetime = int(query["X-Amz-Expires"])
        path, _, raw_query = environ["RAW_URI"].partition("?")
        unsigned = "&".join(
            pair for pair in raw_query.split("&") if not pair.startswith("X-Amz-Signature=")
        )
        request = AWSRequest(
            method=environ["REQUEST_METHOD"], url=f"http://{environ['HTTP_HOST']}{path}?{unsigned}"
        )
        request.context["timestamp"] = query["X-Amz-Date"]
        auth = S3SigV4QueryAuth(
            Credentials(key_id, self.secrets.get(key_id, "")), service, region, expires=lifetime
        )
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            return ("SignatureDoesNotMatch", "The request signature does not match.")
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if time.time() > signed_at.timestamp() + lifetime:
            return ("AccessDenied", "Request has expired")
        return None


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, behind the private bucket's rules."""
    _require_moto()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # The server logs every request line, presigned query strings included.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = PrivateBucket(
        DomainDispatcherApplication(create_backend_app), {ACCESS_KEY_ID: SECRET_ACCESS_KEY}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(timeout=10)


@dataclass
class Bucket:
    name: str
    endpoint: str
    client: Any  # boto3's S3 client, signed with the studio's keys

    def object_keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def use(self, settings, *, url_seconds: int = 300) -> None:
        """Point the studio's media store at this bucket, as the settings do when
        STUDIO_S3_BUCKET and its companions are set."""
        config = {"bucket": self.name, "endpoint_url": self.endpoint, "region": REGION}
        settings.STORAGES = {
            **settings.STORAGES,
            "default": s3_storage(
                **config,
                access_key_id=ACCESS_KEY_ID,
                secret_access_key=SECRET_ACCESS_KEY,
                url_seconds=url_seconds,
                addressing_style="path",
            ),
        }
        directives = dict(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"])
        directives["img-src"] = [
            *directives["img-src"],
            *s3_origins(**config, addressing_style="path"),
        ]
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives}


@pytest.fixture
def bucket(s3_endpoint, settings, media) -> Bucket:
    """A fresh private bucket, and the studio storing its media there (not in `media`)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    made = Bucket(name=f"studio-{uuid.uuid4().hex[:12]}", endpoint=s3_endpoint, client=client)
    client.create_bucket(Bucket=made.name)
    made.use(settings)
    return made


def no_local_files(media) -> bool:
    return not media.exists() or not any(p.is_file() for p in media.rglob("*"))
