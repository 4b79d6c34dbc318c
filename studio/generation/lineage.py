"""Where an image came from and what was made of it: its lineage, read from the links each
job input keeps to the stored image it was made from.

An image's parents are its job's inputs: a stored image (kept, in the trash, or deleted for
good) or an upload, which is a root. Its children are the images of the jobs that used it
as an input. The tree is walked a level at a time, one query a level, through removed
images too, so trashing the middle of a chain never cuts it in two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from django.db.models import QuerySet

from studio.generation.models import GeneratedImage, Job, JobInput

# How far the tree is followed each way, and how wide a level may grow: a lineage is read
# at a glance, not browsed.
MOST_LEVELS = 8
MOST_PER_LEVEL = 12


@dataclass(frozen=True)
class Node:
    """One place in an image's lineage: a stored image (`image`, perhaps in the trash), an
    uploaded reference (`upload`), or an image deleted for good (neither)."""

    image: GeneratedImage | None = None
    upload: JobInput | None = None

    @property
    def removed(self) -> bool:
        return self.upload is None and (self.image is None or self.image.deleted_at is not None)

    @property
    def key(self) -> tuple[str, object]:
        if self.image is not None:
            return ("image", self.image.pk)
        if self.upload is not None:
            return ("upload", self.upload.pk)
        return ("gone", id(self))


@dataclass(frozen=True)
class Lineage:
    """An image's ancestors (nearest level last), and its descendants (nearest first)."""

    ancestors: list[list[Node]]
    descendants: list[list[Node]]

    @property
    def parents(self) -> list[Node]:
        return self.ancestors[-1] if self.ancestors else []

    @property
    def kept_parent(self) -> GeneratedImage | None:
        """The first parent still in the gallery, to compare the image with."""
        return next((n.image for n in self.parents if n.image and not n.removed), None)

    def __bool__(self) -> bool:
        return bool(self.ancestors or self.descendants)


def lineage_of(image: GeneratedImage) -> Lineage:
    """The image's lineage within its team: another team's images never show in it."""
    team_id = image.team_id
    ancestors: list[list[Node]] = []
    level = [image.job_id]
    seen: set[tuple[str, object]] = {("image", image.pk)}
    for _ in range(MOST_LEVELS):
        parents = _fresh(_parents_of(level, team_id), seen)
        if not parents:
            break
        ancestors.insert(0, parents)
        level = [n.image.job_id for n in parents if n.image is not None]
    descendants: list[list[Node]] = []
    images = [image.pk]
    for _ in range(MOST_LEVELS):
        children = _fresh(_children_of(images, team_id), seen)
        if not children:
            break
        descendants.append(children)
        images = [n.image.pk for n in children if n.image is not None]
    return Lineage(ancestors, descendants)


def _fresh(nodes: Iterable[Node], seen: set[tuple[str, object]]) -> list[Node]:
    """Nodes not yet in the tree, at most a level's worth (an image used twice is once)."""
    fresh = []
    for node in nodes:
        if node.key in seen:
            continue
        seen.add(node.key)
        fresh.append(node)
    return fresh[:MOST_PER_LEVEL]


def _parents_of(job_ids: list[UUID], team_id: int) -> list[Node]:
    """The inputs of these jobs as nodes: one query. An image of another team (from
    before links were kept within a team) shows as removed."""
    if not job_ids:
        return []
    inputs = (
        JobInput.objects.filter(job_id__in=job_ids)
        .select_related("source_image__job")
        .order_by("job_id", "position")
    )
    nodes = []
    for item in inputs:
        if item.source_image is not None and item.source_image.team_id == team_id:
            nodes.append(Node(image=item.source_image))
        elif item.source_job_id is not None or item.source_image is not None:
            nodes.append(Node())  # made from an image since deleted for good
        else:
            nodes.append(Node(upload=item))
    return nodes


def _children_of(image_ids: list[int], team_id: int) -> list[Node]:
    """The team's images of the jobs that used these as inputs, trashed ones included:
    one query."""
    if not image_ids:
        return []
    jobs = Job.objects.filter(inputs__source_image_id__in=image_ids)
    children = (
        GeneratedImage.objects.filter(job__in=jobs, team_id=team_id)
        .select_related("job")
        .order_by("created_at", "index")
    )
    return [Node(image=child) for child in children[: MOST_PER_LEVEL * 2]]


def jobs_using(image_id: int) -> QuerySet[Job]:
    """The jobs that used the image as an input: the gallery's "edits of this image"."""
    return Job.objects.filter(inputs__source_image_id=image_id)
