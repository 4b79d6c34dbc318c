"""The smoke check's comparison: the shape of an answer, and one check's findings.

An answer's shape is every key path with the type of its value. A Check holds what one
call of the smoke test found when the real service's answer is set beside the emulator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def shape(value: Any, path: str = "") -> set[str]:
    """Every key path with its value's type; list items share one `[]` path."""
    if isinstance(value, dict):
        paths = {f"{path}:object"} if path else set()
        for key, item in value.items():
            paths |= shape(item, f"{path}.{key}" if path else key)
        return paths
    if isinstance(value, list):
        paths = {f"{path}:list"}
        for item in value:
            paths |= shape(item, f"{path}[]")
        return paths
    kind = {bool: "bool", int: "number", float: "number", str: "string"}.get(type(value), "null")
    return {f"{path}:{kind}"}


# Keys whose presence depends on timing or randomness, not on the protocol.
_VOLATILE = ("scheduled_time", "end_time", "task_metrics")


@dataclass
class Check:
    name: str
    status: int | None = None
    missing_in_real: list[str] = field(default_factory=list)
    only_in_real: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing_in_real and not self.problems

    def compare(self, real: Any, emulated: Any) -> None:
        """Add the differences of one pair of answers to what this check found.

        A value that is null on one side matches any type on the other: fields such as
        start_time are null or not depending on the task's state, not on the protocol.
        """
        real_types, emulated_types = _types(shape(real)), _types(shape(emulated))
        missing = {
            f"{path}:{'/'.join(sorted(types))}"
            for path, types in emulated_types.items()
            if path not in real_types and not any(v in path for v in _VOLATILE)
        }
        for path in real_types.keys() & emulated_types.keys():
            real_kinds, emulated_kinds = (
                real_types[path] - {"null"},
                emulated_types[path] - {"null"},
            )
            if real_kinds and emulated_kinds and not real_kinds & emulated_kinds:
                self.problems.append(
                    f"{path} is {'/'.join(real_kinds)} in the real answer, "
                    f"{'/'.join(emulated_kinds)} in the emulator's"
                )
        extra = {
            f"{path}:{'/'.join(sorted(t))}"
            for path, t in real_types.items()
            if path not in emulated_types
        }
        self.missing_in_real = sorted(set(self.missing_in_real) | missing)
        self.only_in_real = sorted(set(self.only_in_real) | extra)


def _types(paths: set[str]) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for item in paths:
        path, _, kind = item.rpartition(":")
        types.setdefault(path, set()).add(kind)
    return types
