"""The studio's settings as a fresh interpreter reads them from its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter, so this process's settings stay as they are."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHSCOPE_"))}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import studio.settings as s; print(s.DEBUG, s.DASHSCOPE_BASE_URL)",
        ],
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
