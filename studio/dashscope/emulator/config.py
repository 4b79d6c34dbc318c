"""How the emulator behaves: latency, provider limits, lifetimes and injected faults."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Final, Literal, TypedDict, TypeGuard, Unpack

from studio.dashscope.emulator.readings import Reading, parse_readings


class Clock:
    """Wall-clock time that tests can move forward without sleeping."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self._offset += seconds


class FakeClock(Clock):
    """Time that moves only when told to (or when someone sleeps on it)."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        super().__init__()
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


# Where a fault applies. "generate" is the sync endpoint, "submit" the async ones.
FAULT_SCOPES = ("generate", "submit", "fetch", "cancel", "list", "result", "any")
# What it does: an HTTP error answer, a dropped connection (before or after the request
# took effect), or a slow answer.
FAULT_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    "429-throttling": (429, "Throttling", "Requests throttling triggered."),
    "429-quota": (
        429,
        "Throttling.AllocationQuota",
        "Allocated quota exceeded, please increase your quota limit.",
    ),
    "500": (
        500,
        "InternalError",
        "An internal error has occured, please try again later or contact service support.",
    ),
    "502": (502, "BadGateway", "Bad gateway."),
    "503": (503, "ModelUnavailable", "Model is unavailable, please try again later."),
    "504": (504, "GatewayTimeout", "Gateway timeout."),
}
_FAULT_RE = re.compile(
    r"^(?P<scope>[a-z]+):(?P<kind>429-throttling|429-quota|\d{3}|drop-after|drop|slow=\d+(\.\d+)?)"
    r"(?:x(?P<count>\d+|\*))?$"
)


@dataclass
class FaultRule:
    scope: str
    kind: str
    remaining: int | None  # None: every time

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """`submit:429x3`, `fetch:503`, `submit:drop-after`, `fetch:slow=40x2`, `any:500x*`."""
        match = _FAULT_RE.match(spec.strip())
        if (
            match is None
            or match["scope"] not in FAULT_SCOPES
            or (match["kind"][0].isdigit() and match["kind"] not in FAULT_ERRORS)
        ):
            raise ValueError(
                f"Bad fault {spec!r}: write SCOPE:KIND[xCOUNT] with SCOPE one of "
                f"{', '.join(FAULT_SCOPES)} and KIND one of {', '.join(FAULT_ERRORS)}, "
                "drop, drop-after or slow=SECONDS."
            )
        kind, count = match["kind"], match["count"]
        return cls(
            scope=match["scope"],
            kind=kind,
            remaining=None if count == "*" else int(count or 1),
        )

    def __str__(self) -> str:
        count = "*" if self.remaining is None else self.remaining
        return f"{self.scope}:{self.kind}x{count}"


def parse_faults(text: str) -> list[FaultRule]:
    return [FaultRule.parse(part) for part in text.split(",") if part.strip()]


# Where results are served from, as the provider's answers name them: a regional result
# bucket (S0:360) and an accelerated one, whose `{hex}` is a bucket id drawn per emulator.
DEFAULT_RESULT_HOSTS = (
    "dashscope-result-sh.oss-cn-shanghai.aliyuncs.com",
    "dashscope-{hex}.oss-accelerate.aliyuncs.com",
)
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_HOST_LABEL}\.)+[a-z]{{2,63}}$")


def parse_result_hosts(text: str) -> tuple[str, ...]:
    """Comma-separated host names; `{hex}` in one stands for four hex digits."""
    hosts = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    for host in hosts:
        if not _HOST_RE.match(host.replace("{hex}", "0000")):
            raise ValueError(
                f"Bad result host {host!r}: write host names such as "
                "dashscope-result-sh.oss-cn-shanghai.aliyuncs.com, comma-separated."
            )
    if not hosts:
        raise ValueError("Name at least one result host.")
    return hosts


@dataclass
class EmulatorConfig:
    api_key_prefix: str = "sk-"  # a Bearer key starting with this is valid
    pending_seconds: float = 0.5  # least time a task waits in PENDING
    running_seconds: float = 3.0  # time a task spends RUNNING (and a sync call takes)
    slow_seconds: float = 150.0  # RUNNING time of a prompt with the #slow trigger
    # A stream's pace: the wait before each text event and before each image event, and
    # how long a `#stream-stall` prompt's stream stays silent before it is cut.
    stream_event_seconds: float = 0.1
    stream_image_seconds: float = 1.0
    stream_stall_seconds: float = 600.0
    max_running_per_model: int = 2  # the provider's concurrency per model; the rest wait
    submits_per_second: int = 2  # per model, over a sliding second (sync calls count too)
    queries_per_second: int = 20  # task fetch, list and cancel, per account
    task_ttl_seconds: float = 24 * 3600  # then a task id reads UNKNOWN
    result_ttl_seconds: float = 24 * 3600  # then a result URL answers 403
    retry_after: int | None = None  # a Retry-After header on 429s, if set
    # The zone of the provider's wall-clock times (submit_time..., the list's start_time and
    # end_time), in minutes east of UTC. The documents never name it; Beijing would be 480.
    utc_offset_minutes: int = 0
    # The origin written into upload certificates (getPolicy's upload_host); default: the
    # request's Host. Result URLs never use it: they name `result_hosts`.
    public_url: str | None = None
    # Result URLs name these hosts in turn; the emulator answers a result's path on any host.
    result_hosts: tuple[str, ...] = DEFAULT_RESULT_HOSTS
    # The readings of the documents' contradictions played instead of the default ones
    # (rules.Reading; "strict" selects every stricter one). Empty: the lenient defaults.
    seed_reading: frozenset[Reading] = frozenset()
    log_path: str | None = None  # JSON lines, one per request
    faults: list[FaultRule] = field(default_factory=list)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Unpack[ConfigOverrides]
    ) -> EmulatorConfig:
        """Defaults, then DASHSCOPE_EMULATOR_* variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        values, cleared = _read_env(env)
        config = replace(cls(), **values)
        for name in cleared:
            # An empty variable has always cleared its setting, even one that takes no None.
            setattr(config, name, None)
        return replace(config, **_given(overrides))


# The settings read alike, from the environment or from an override.
_Seconds = Literal[
    "pending_seconds",
    "running_seconds",
    "slow_seconds",
    "stream_event_seconds",
    "stream_image_seconds",
    "stream_stall_seconds",
    "task_ttl_seconds",
    "result_ttl_seconds",
]
_Count = Literal[
    "max_running_per_model", "submits_per_second", "queries_per_second", "utc_offset_minutes"
]
_Text = Literal["public_url", "log_path"]
_SECONDS: Final[tuple[_Seconds, ...]] = (
    "pending_seconds",
    "running_seconds",
    "slow_seconds",
    "stream_event_seconds",
    "stream_image_seconds",
    "stream_stall_seconds",
    "task_ttl_seconds",
    "result_ttl_seconds",
)
_COUNTS: Final[tuple[_Count, ...]] = (
    "max_running_per_model",
    "submits_per_second",
    "queries_per_second",
    "utc_offset_minutes",
)
_TEXTS: Final[tuple[_Text, ...]] = ("public_url", "log_path")


class ConfigValues(TypedDict, total=False):
    """Settings of an EmulatorConfig to replace, by field name."""

    api_key_prefix: str
    pending_seconds: float
    running_seconds: float
    slow_seconds: float
    stream_event_seconds: float
    stream_image_seconds: float
    stream_stall_seconds: float
    max_running_per_model: int
    submits_per_second: int
    queries_per_second: int
    task_ttl_seconds: float
    result_ttl_seconds: float
    retry_after: int | None
    utc_offset_minutes: int
    public_url: str | None
    result_hosts: tuple[str, ...]
    seed_reading: frozenset[Reading]
    log_path: str | None
    faults: list[FaultRule]


class ConfigOverrides(TypedDict, total=False):
    """EmulatorConfig.from_env's overrides; None leaves a setting as it is."""

    api_key_prefix: str | None
    pending_seconds: float | None
    running_seconds: float | None
    slow_seconds: float | None
    stream_event_seconds: float | None
    stream_image_seconds: float | None
    stream_stall_seconds: float | None
    max_running_per_model: int | None
    submits_per_second: int | None
    queries_per_second: int | None
    task_ttl_seconds: float | None
    result_ttl_seconds: float | None
    retry_after: int | None
    utc_offset_minutes: int | None
    public_url: str | None
    result_hosts: tuple[str, ...] | None
    seed_reading: frozenset[Reading] | None
    log_path: str | None
    faults: list[FaultRule] | None


def _is_seconds(name: str) -> TypeGuard[_Seconds]:
    return name in _SECONDS


def _is_count(name: str) -> TypeGuard[_Count]:
    return name in _COUNTS


def _is_text(name: str) -> TypeGuard[_Text]:
    return name in _TEXTS


def _read_env(env: Mapping[str, str]) -> tuple[ConfigValues, list[str]]:
    """The DASHSCOPE_EMULATOR_* variables that are set, parsed in field order; and the
    settings that take no None but that an empty variable clears."""
    values = ConfigValues()
    cleared: list[str] = []
    for item in fields(EmulatorConfig):
        name = item.name
        raw = env.get(f"DASHSCOPE_EMULATOR_{name.upper()}")
        if raw is None:
            continue
        if name == "faults":
            values["faults"] = parse_faults(raw)
        elif name == "result_hosts":
            values["result_hosts"] = parse_result_hosts(raw)
        elif name == "seed_reading":
            values["seed_reading"] = parse_readings(raw)
        elif _is_seconds(name):
            values[name] = float(raw)
        elif name == "retry_after":
            values["retry_after"] = int(raw) if raw else None
        elif _is_text(name):
            values[name] = raw or None
        elif not raw:
            cleared.append(name)
        elif _is_count(name):
            values[name] = int(raw)
        elif name == "api_key_prefix":
            values["api_key_prefix"] = raw
    return values, cleared


def _given(overrides: ConfigOverrides) -> ConfigValues:
    """The overrides that are not None."""
    known = {item.name for item in fields(EmulatorConfig)}
    unknown = [name for name, value in overrides.items() if value is not None and name not in known]
    if unknown:
        raise TypeError(
            f"EmulatorConfig.__init__() got an unexpected keyword argument {unknown[0]!r}"
        )
    values = ConfigValues()
    for seconds in _SECONDS:
        if (number := overrides.get(seconds)) is not None:
            values[seconds] = number
    for count in _COUNTS:
        if (whole := overrides.get(count)) is not None:
            values[count] = whole
    for text in _TEXTS:
        if (string := overrides.get(text)) is not None:
            values[text] = string
    if (prefix := overrides.get("api_key_prefix")) is not None:
        values["api_key_prefix"] = prefix
    if (retry_after := overrides.get("retry_after")) is not None:
        values["retry_after"] = retry_after
    if (hosts := overrides.get("result_hosts")) is not None:
        values["result_hosts"] = hosts
    if (readings := overrides.get("seed_reading")) is not None:
        values["seed_reading"] = readings
    if (faults := overrides.get("faults")) is not None:
        values["faults"] = faults
    return values
