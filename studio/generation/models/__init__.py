"""Jobs: a designer's request, its inputs, what the provider made, and everything that happened.

Each model lives in the module named for its part; they are all importable from here.
"""

from studio.generation.models.charges import QuotaCharge
from studio.generation.models.display import JobDisplay, ordinal
from studio.generation.models.explorations import Exploration, ExplorationCell, Vote
from studio.generation.models.images import (
    GeneratedImage,
    GeneratedImageQuerySet,
    JobInput,
    StagedImage,
    _input_path,
    _staged_path,
    box_in_percent,
)
from studio.generation.models.job import (
    Job,
    JobEvent,
    JobFields,
    LeaseFields,
    status_for_designers,
    typical_seconds,
    with_usual_seconds,
)
from studio.generation.models.kits import SUBJECT, BrandKit, KitImage
from studio.generation.models.workers import LeaseTerm, WorkerHeartbeat, WorkerLease

__all__ = [
    "SUBJECT",
    "BrandKit",
    "Exploration",
    "ExplorationCell",
    "GeneratedImage",
    "GeneratedImageQuerySet",
    "Job",
    "JobDisplay",
    "JobEvent",
    "JobFields",
    "JobInput",
    "KitImage",
    "LeaseFields",
    "LeaseTerm",
    "QuotaCharge",
    "StagedImage",
    "Vote",
    "WorkerHeartbeat",
    "WorkerLease",
    "_input_path",
    "_staged_path",
    "box_in_percent",
    "ordinal",
    "status_for_designers",
    "typical_seconds",
    "with_usual_seconds",
]
