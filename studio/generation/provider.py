"""The provider client as the studio configures it: the worker's only way to DashScope."""

from __future__ import annotations

from django.conf import settings

from studio.dashscope.client import DashScopeClient


def get_client() -> DashScopeClient:
    # Read here, in the worker, and nowhere near a template, a task argument or a log line.
    return DashScopeClient(api_key=settings.DASHSCOPE_API_KEY, base_url=settings.DASHSCOPE_BASE_URL)
