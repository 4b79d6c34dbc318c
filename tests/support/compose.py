"""compose.yaml as the deploy and worker tests read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def read_compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())
