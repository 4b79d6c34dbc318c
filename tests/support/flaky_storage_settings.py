"""The studio's settings with tests.support.flaky_storage.FlakyStorage as the media storage."""

from studio.settings import *  # noqa: F403
from studio.settings import STORAGES

STORAGES = {
    **STORAGES,
    "default": {
        "BACKEND": "tests.support.flaky_storage.FlakyStorage",
        "OPTIONS": {"allow_overwrite": True},
    },
}
