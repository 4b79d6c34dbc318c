"""The provider client as the studio configures it: the worker's only way to DashScope."""

from __future__ import annotations

from django.conf import settings

from studio.dashscope.client import DashScopeClient, RetryPolicy
from studio.dashscope.guard import emulator_route


def get_client(*, retries: bool = True) -> DashScopeClient:
    """The configured client. The dispatcher takes one without retries: it counts every
    request against the provider's limits itself and reschedules what failed."""
    # The key is read here, in the worker, and nowhere near a template, a task argument or
    # a log line.
    return DashScopeClient(
        api_key=settings.DASHSCOPE_API_KEY,
        base_url=settings.DASHSCOPE_BASE_URL,
        retry=None if retries else RetryPolicy(attempts=1),
        result_hosts=settings.STUDIO_RESULT_HOSTS,
        route=emulator_route(settings.DASHSCOPE_BASE_URL) if settings.DASHSCOPE_EMULATED else None,
    )
