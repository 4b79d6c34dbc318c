"""Temporary uploads: `GET /uploads?action=getPolicy`, the OSS form upload, and `oss://` inputs.

As with the provider, a client asks for an upload certificate for a model, posts the file
to the certificate's `upload_host` (here the emulator's own `/oss-upload`, standing in for
the OSS bucket) with the signed policy, and names the file as `oss://<key>` in a request
for that model, with `X-DashScope-OssResourceResolve: enable`.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from email.parser import BytesParser
from typing import TYPE_CHECKING

from studio.dashscope.emulator.parse import invalid
from studio.dashscope.emulator.rules import model_rules
from studio.dashscope.emulator.wire import (
    EmRequest,
    EmResponse,
    json_answer,
    oss_error,
    request_id,
    wire_time,
)

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator

OSS_UPLOAD_PATH = "/oss-upload"  # the emulator's stand-in for the upload_host OSS bucket
UPLOAD_POLICY_SECONDS = 300  # how long an upload certificate may be used, as the real one
UPLOAD_KEEP_SECONDS = 48 * 3600  # how long an uploaded file can be named as oss://
UPLOAD_MAX_BYTES = 100 * 1024 * 1024  # the certificate's max_file_size_mb


@dataclass(frozen=True)
class Upload:
    data: bytes
    model: str
    expires_at: float


def upload_policy(em: Emulator, request: EmRequest) -> EmResponse:
    """An upload certificate: a policy for one upload directory, signed, naming this
    emulator as the upload host."""
    if request.query.get("action") != "getPolicy":
        raise invalid("The action must be getPolicy.")
    rules = model_rules(request.query.get("model", ""))
    if rules is None:
        raise invalid("Model not exist.")
    model = rules.name
    now = em.clock.now()
    upload_dir = f"dashscope-instant/{uuid.uuid4().hex}/{wire_time(now)[:10]}/{model}"
    policy = {
        "expiration": wire_time(now + UPLOAD_POLICY_SECONDS).replace(" ", "T") + "Z",
        "expires_at": now + UPLOAD_POLICY_SECONDS,
        "conditions": [["starts-with", "$key", upload_dir], {"model": model}],
    }
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    origin = (em.config.public_url or request.origin).rstrip("/")
    data = {
        "policy": encoded,
        "signature": _policy_signature(em, encoded.encode()).decode(),
        "upload_dir": upload_dir,
        "upload_host": f"{origin}{OSS_UPLOAD_PATH}",
        "expire_in_seconds": UPLOAD_POLICY_SECONDS,
        "max_file_size_mb": UPLOAD_MAX_BYTES // (1024 * 1024),
        "capacity_limit_mb": 999999,
        "oss_access_key_id": "LTAI5tEmulatorKey",
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }
    return json_answer(200, {"request_id": request_id(), "data": data})


def _policy_signature(em: Emulator, policy: bytes) -> bytes:
    return base64.b64encode(hmac.new(em._secret, policy, hashlib.sha1).digest())


def oss_upload(em: Emulator, request: EmRequest) -> EmResponse:
    """A browser-style form upload to OSS, as the SDK sends it: no Authorization; the
    signed policy says where it may go and until when."""
    if len(request.body) > UPLOAD_MAX_BYTES + 64 * 1024:  # the file, and the form around it
        return oss_error(
            400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."
        )
    fields = _form_fields(request)
    # Compared as bytes: a field that is not text is a signature that does not match.
    policy, signature = fields.get("policy", b""), fields.get("Signature", b"")
    if not policy or not hmac.compare_digest(signature, _policy_signature(em, policy)):
        return oss_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    terms = json.loads(base64.b64decode(policy))
    if em.clock.now() > terms["expires_at"]:
        return oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    key = fields.get("key", b"").decode(errors="replace")
    prefix = terms["conditions"][0][2]
    if not key.startswith(prefix + "/") or "file" not in fields:
        return oss_error(
            403, "AccessDenied", "Invalid according to Policy: Policy Condition failed."
        )
    return _keep_upload(em, key, fields["file"], terms["conditions"][1]["model"])


def _keep_upload(em: Emulator, key: str, data: bytes, model: str) -> EmResponse:
    """Store a file under its key, once: OSS forbids overwriting it (x_oss_forbid_overwrite)."""
    with em._lock:
        if key in em.uploads:
            return oss_error(409, "FileAlreadyExists", "The object you specified already exists.")
        em.uploads[key] = Upload(
            data=data, model=model, expires_at=em.clock.now() + UPLOAD_KEEP_SECONDS
        )
        em.counts["uploads"] += 1
    return EmResponse(200, b"", content_type="text/plain")


def _form_fields(request: EmRequest) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def uploaded_bytes(em: Emulator, url: str, model: object, *, resolve: bool) -> bytes:
    """An `oss://` input's bytes: only with the resolve header, and only for the model the
    file was uploaded for."""
    if not resolve:
        raise invalid("An oss:// input needs the header X-DashScope-OssResourceResolve: enable.")
    with em._lock:
        upload = em.uploads.get(url.removeprefix("oss://"))
    if upload is None or em.clock.now() > upload.expires_at:
        raise invalid(f"The file {url} does not exist or has expired.")
    rules = model_rules(str(model))
    if rules is None or upload.model != rules.name:
        raise invalid(f"The file {url} was uploaded for another model ({upload.model}).")
    return upload.data
