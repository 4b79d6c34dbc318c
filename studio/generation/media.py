"""The media store against the database: files missing, files changed, files nobody uses.

Everything goes through the storage API (listdir, size, open, get_modified_time, save,
delete), never through local paths, so the check works the same on a local directory and
on an S3 bucket.

What a repair does, and what it never does: a missing thumbnail is made again from its
original; a file no row refers to is deleted once it is older than a grace period (a
result being stored right now is written before its row); a row is never deleted, and
neither is a file a row refers to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import cast

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db.models import Q

from studio.generation.models import GeneratedImage, JobInput, StagedImage
from studio.generation.worker.results import (
    RESULTS_DIR,
    THUMBS_DIR,
    decode_result,
    thumbnail_name,
)


def upload_dir(model: type[JobInput] | type[StagedImage]) -> str:
    """The top folder a model's `upload_to` puts its files in."""
    name = model._meta.get_field("image").generate_filename(model(), "sample.png")
    return name.split("/", 1)[0]


def studio_dirs() -> tuple[str, ...]:
    return (RESULTS_DIR, THUMBS_DIR, upload_dir(JobInput), upload_dir(StagedImage))


@dataclass
class Finding:
    problem: str  # "missing", "changed" or "orphan"
    name: str  # the file's name in the store
    what: str  # "image", "thumbnail", "input", "staged" or "file"
    row: str = ""  # the row that refers to it, "GeneratedImage 12"
    detail: str = ""
    action: str = ""  # what --repair did: "rebuilt", "deleted", or why it left it
    resolved: bool = False  # fixed, or no problem at all (a young orphan)


@dataclass
class MediaReport:
    dirs: tuple[str, ...]
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.resolved]

    def as_dict(self) -> dict:
        return {
            "dirs": list(self.dirs),
            "files": self.files,
            "rows": self.rows,
            "findings": [asdict(finding) for finding in self.findings],
            "problems": len(self.problems),
        }


def walk(storage: Storage, top: str) -> Iterator[str]:
    """Every file under `top`, by the storage's own listing."""
    try:
        dirs, files = storage.listdir(top)
    except FileNotFoundError:  # a local folder not made yet; a bucket lists nothing instead
        return
    for name in files:
        yield f"{top}/{name}"
    for folder in dirs:
        yield from walk(storage, f"{top}/{folder}")


def sha256_of(storage: Storage, name: str) -> str:
    digest = hashlib.sha256()
    with storage.open(name, "rb") as file:
        for chunk in file.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def file_names(image: GeneratedImage) -> tuple[str, str]:
    """The names of a result's original and thumbnail. Text for any row read from the
    database (the columns are not null), though a file field's name may be None."""
    return cast(str, image.image.name), cast(str, image.thumbnail.name)


def rebuild_thumbnail(storage: Storage, image: GeneratedImage) -> str:
    """Make an image's thumbnail again from its original; the name it was stored under."""
    original, _ = file_names(image)
    with storage.open(original, "rb") as file:
        data = file.read()
    thumbnail = decode_result(data).thumbnail
    wanted = image.thumbnail.name or thumbnail_name(image.job_id, image.index)
    stored = storage.save(wanted, ContentFile(thumbnail))
    if stored != image.thumbnail.name:
        GeneratedImage.objects.filter(pk=image.pk).update(thumbnail=stored)
    return stored


def is_referenced(name: str) -> bool:
    """Whether any row refers to the file now (it may have been stored since the listing)."""
    return (
        GeneratedImage.objects.filter(Q(image=name) | Q(thumbnail=name)).exists()
        or JobInput.objects.filter(image=name).exists()
        or StagedImage.objects.filter(image=name).exists()
    )


def check_media(
    storage: Storage, *, now: datetime, repair: bool = False, older_than: timedelta
) -> MediaReport:
    """Every row's files against the store, and the store's files against the rows; with
    `repair`, missing thumbnails rebuilt and old orphans deleted."""
    report = MediaReport(dirs=studio_dirs())
    # The listing comes first: a file stored after it is not looked at, and one whose row
    # is committed after the rows are read shows as a young orphan, which is left alone.
    listed = {name for top in report.dirs for name in walk(storage, top)}
    report.files = len(listed)

    def present(name: str) -> bool:
        # Asked again when not listed: it may be outside the listed folders, or stored
        # after the listing by a worker whose row is already committed.
        return bool(name) and (name in listed or storage.exists(name))

    referenced = _check_images(storage, report, present, repair=repair)
    referenced |= _check_uploads(report, present)
    orphans = sorted(listed - referenced)
    _check_orphans(storage, report, orphans, now=now, repair=repair, older_than=older_than)
    return report


def _check_images(
    storage: Storage, report: MediaReport, present: Callable[[str], bool], *, repair: bool
) -> set[str]:
    """Each result's original and thumbnail; the names the results refer to."""
    referenced: set[str] = set()
    images = GeneratedImage.objects.order_by("pk")
    report.rows["images"] = images.count()
    for image in images.iterator():
        referenced.update(file_names(image))
        report.findings.extend(_image_findings(storage, image, present, repair=repair))
    return referenced


def _image_findings(
    storage: Storage, image: GeneratedImage, present: Callable[[str], bool], *, repair: bool
) -> list[Finding]:
    """What is wrong with one result's files, and what a repair did about it."""
    findings = []
    row = f"GeneratedImage {image.pk}"
    original, thumbnail = file_names(image)
    original_ok = present(original)
    if not original_ok:
        findings.append(Finding("missing", original, "image", row))
    else:
        problem = _changed(storage, image)
        if problem:
            original_ok = False
            findings.append(Finding("changed", original, "image", row, detail=problem))
    if present(thumbnail):
        return findings
    finding = Finding("missing", thumbnail, "thumbnail", row)
    if repair and original_ok:
        finding.name = rebuild_thumbnail(storage, image)
        finding.action, finding.resolved = "rebuilt from the original", True
    elif repair:
        finding.action = "left: the original is missing or changed"
    findings.append(finding)
    return findings


def _check_uploads(report: MediaReport, present: Callable[[str], bool]) -> set[str]:
    """Each reference image of a job or an edit form; the names they refer to."""
    referenced: set[str] = set()
    for model, what, count_as in ((JobInput, "input", "inputs"), (StagedImage, "staged", "staged")):
        rows = model.objects.order_by("pk").values_list("pk", "image")
        report.rows[count_as] = rows.count()
        for pk, name in rows.iterator():
            referenced.add(name)
            if not present(name):
                report.findings.append(Finding("missing", name, what, f"{model.__name__} {pk}"))
    return referenced


def _check_orphans(
    storage: Storage,
    report: MediaReport,
    orphans: list[str],
    *,
    now: datetime,
    repair: bool,
    older_than: timedelta,
) -> None:
    """Files no row referred to: left while young, deleted by a repair once old (unless a
    row refers to one by now)."""
    for name in orphans:
        age = now - storage.get_modified_time(name)
        finding = Finding("orphan", name, "file", detail=f"{age.total_seconds() / 3600:.1f} h old")
        if age < older_than:
            finding.action, finding.resolved = "left: too recent", True
        elif repair and not is_referenced(name):
            storage.delete(name)
            finding.action, finding.resolved = "deleted", True
        report.findings.append(finding)


def _changed(storage: Storage, image: GeneratedImage) -> str:
    """How a stored original differs from what its row recorded, or ""."""
    original, _ = file_names(image)
    size = storage.size(original)
    if size != image.bytes:
        return f"{size} bytes, the database says {image.bytes}"
    if sha256_of(storage, original) != image.sha256:
        return "sha256 differs from the database"
    return ""
