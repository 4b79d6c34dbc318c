"""The generation app in the admin: jobs (jobs.py), brand kits (kits.py), the usage
report (usage.py) and the studio's health (health.py); studio/urls.py routes the two report
pages."""

from studio.generation.admin.health import studio_health
from studio.generation.admin.jobs import JobAdmin, may_retry_downloads, retry_held_downloads
from studio.generation.admin.kits import BrandKitAdmin
from studio.generation.admin.usage import usage_report

__all__ = [
    "BrandKitAdmin",
    "JobAdmin",
    "may_retry_downloads",
    "retry_held_downloads",
    "studio_health",
    "usage_report",
]
