"""Fixtures and helpers for tests that talk to the DashScope emulator.

Registered as a pytest plugin from tests/conftest.py. In-process tests use a FakeClock, so a
task that takes three seconds to run takes no time at all; nothing here sleeps for real.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from studio.dashscope.catalog import Endpoint
from studio.dashscope.client import DashScopeClient, RetryPolicy
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport, FakeClock
from studio.dashscope.guard import STAND_IN_ADDRESS
from studio.dashscope.types import GenerationRequest
from studio.dashscope.wire import build_body

API_KEY = "sk-test-0123456789abcdef"
BASE_URL = "http://dashscope.emulator/api/v1"
ROOT = Path(__file__).resolve().parents[2]
# How the emulator is started, here and in compose.yaml (tests/ops/test_deploy.py compares).
EMULATOR_COMMAND = ["manage.py", "emulator"]


def make_image(
    width: int,
    height: int,
    *,
    fmt: str = "PNG",
    color: tuple[int, int, int] = (200, 120, 40),
    alpha: bool = False,
) -> bytes:
    mode = "RGBA" if alpha else "RGB"
    fill = (*color, 128) if alpha else color
    output = io.BytesIO()
    Image.new(mode, (width, height), fill).save(output, format=fmt)
    return output.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


class Emulated:
    """An in-process emulator, its fake clock, and a client wired to it."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.clock = FakeClock()
        self.emulator = Emulator(config, clock=self.clock)
        self.transport = EmulatorTransport(self.emulator)
        self.sleeps: list[float] = []
        self.client = self.make_client()
        self.http = httpx.Client(base_url=BASE_URL, transport=self.transport)

    def make_client(self, **kwargs: Any) -> DashScopeClient:
        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock.sleep(seconds)

        kwargs.setdefault("retry", RetryPolicy(attempts=4))
        # Result hosts resolve to a public stand-in, so the address check runs in-process
        # as it does on a real connection.
        kwargs.setdefault("resolve", lambda host: [STAND_IN_ADDRESS])
        return DashScopeClient(
            api_key=API_KEY,
            base_url=BASE_URL,
            transport=self.transport,
            sleep=sleep,
            clock=self.clock.now,
            rng=lambda: 0.5,
            **kwargs,
        )

    def post(
        self,
        endpoint: Endpoint,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        key: str | None = API_KEY,
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {key}"} if key else {}
        if endpoint.is_async:
            sent["X-DashScope-Async"] = "enable"
        sent.update(headers or {})
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(endpoint.value, content=content, headers=sent)

    def post_request(self, request: GenerationRequest, endpoint: Endpoint) -> httpx.Response:
        return self.post(endpoint, build_body(request, endpoint))

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers={"Authorization": f"Bearer {API_KEY}"})

    def task_ids(self) -> list[str]:
        return list(self.emulator.tasks)


@pytest.fixture
def emulated() -> Iterator[Emulated]:
    """A fresh emulator: 1 s pending, 3 s running, generous rate limits."""
    config = EmulatorConfig(
        pending_seconds=1.0,
        running_seconds=3.0,
        submits_per_second=1000,
        queries_per_second=1000,
        max_running_per_model=100,
    )
    world = Emulated(config)
    yield world
    world.client.close()
    world.http.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedEmulator:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.base_url = base_url
        self.process = process
        self.log_path = log_path

    def control(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        origin = self.base_url.removesuffix("/api/v1")
        if body is None:
            response = httpx.get(f"{origin}/_emulator/{action}")
        else:
            response = httpx.post(f"{origin}/_emulator/{action}", json=body)
        response.raise_for_status()
        return response.json()


def start_served_emulator(log_path: Path, *extra: str) -> ServedEmulator:
    """`python manage.py emulator` in a subprocess, as `make run` starts it."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            *EMULATOR_COMMAND,
            "--addr",
            f"127.0.0.1:{port}",
            "--log",
            str(log_path),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"The emulator exited: {output}") from None
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("The emulator did not start listening within 30 s")
    return ServedEmulator(f"http://127.0.0.1:{port}/api/v1", process, log_path)


def stop(served: ServedEmulator) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()


@pytest.fixture(scope="session")
def served_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEmulator]:
    log_path = tmp_path_factory.mktemp("emulator") / "requests.jsonl"
    served = start_served_emulator(
        log_path,
        "--pending-seconds",
        "0.2",
        "--running-seconds",
        "0.4",
        "--submits-per-second",
        "50",
    )
    yield served
    stop(served)
