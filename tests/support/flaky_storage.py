"""Local media storage that fails the way a full disk does, while a flag file exists.

For the held-download tests, in-process and in real worker clusters (selected there by
DJANGO_SETTINGS_MODULE=tests.support.flaky_storage_settings). The flag file is named by
STUDIO_TEST_STORAGE_FAULT; when it holds text, only names containing that text fail.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage

FLAG_VARIABLE = "STUDIO_TEST_STORAGE_FAULT"


class FlakyStorage(FileSystemStorage):
    def _save(self, name: str, content: Any) -> str:
        flag = os.environ.get(FLAG_VARIABLE, "")
        if flag and Path(flag).exists():
            only = Path(flag).read_text().strip()
            if not only or only in name:
                raise OSError(errno.ENOSPC, "No space left on device (a test's fault)")
        return super()._save(name, content)
