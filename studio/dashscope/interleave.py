"""Mixed text and images (wan2.6-image's `enable_interleave`): what the studio refuses
before sending beyond the mode's image count, size and n, which `ModelSpec.interleaved()`
puts in place of editing's so the usual checks apply them."""

from __future__ import annotations

from studio.dashscope.catalog import ModelSpec
from studio.dashscope.problems import Problem
from studio.dashscope.types import GenerationRequest


def check_interleave(
    spec: ModelSpec, request: GenerationRequest, *, streams: bool
) -> list[Problem]:
    """The mode comes only as a stream from the sync endpoint, as one piece (n), with
    max_images in range."""
    assert spec.interleave is not None
    problems = []
    if not streams:
        problems.append(
            Problem("enable_interleave", "Mixed text and images come only as a live stream.")
        )
    n = spec.interleave.n
    if request.n is not None and (isinstance(request.n, bool) or request.n not in n):
        problems.append(
            Problem("n", f"Text and images come as one piece per request: n must be {n.min}.")
        )
    allowed = spec.interleave.max_images
    if request.max_images is not None and (
        isinstance(request.max_images, bool) or request.max_images not in allowed
    ):
        problems.append(
            Problem(
                "max_images",
                f"Ask for {allowed.min} to {allowed.max} pictures in mixed text and images.",
            )
        )
    return problems
