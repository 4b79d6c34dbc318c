"""Emulators that stream (Server-Sent Events) for the stream tests, served over a socket.

`served_with_pace` starts `manage.py emulator` as `make run` does, with the stream's pace
set through the DASHSCOPE_EMULATOR_STREAM_* variables. `threaded_emulator` serves an
in-memory Emulator on a real socket from a thread, so a test can read its counters while
a stream runs. Test modules wrap these in fixtures of their own.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from studio.dashscope.emulator import Emulator, EmulatorConfig, serve
from tests.support.emulation import ServedEmulator, start_served_emulator, stop

WAN26_IMAGE = "wan2.6-image"
SYNC_PATH = "/services/aigc/multimodal-generation/generation"


def interleave_body(prompt: str, **parameters: object) -> dict[str, object]:
    """A mixed text-and-image request as the documents write it (stream true too)."""
    return {
        "model": WAN26_IMAGE,
        "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
        "parameters": {"enable_interleave": True, "stream": True, **parameters},
    }


@contextlib.contextmanager
def served_with_pace(
    log_path: Path, *, event: float, image: float, stall: float
) -> Iterator[ServedEmulator]:
    """`manage.py emulator` whose streams wait `event` s before text, `image` s before a
    picture, and stay silent `stall` s on `#stream-stall`."""
    pace = {
        "DASHSCOPE_EMULATOR_STREAM_EVENT_SECONDS": str(event),
        "DASHSCOPE_EMULATOR_STREAM_IMAGE_SECONDS": str(image),
        "DASHSCOPE_EMULATOR_STREAM_STALL_SECONDS": str(stall),
    }
    before = {name: os.environ.get(name) for name in pace}
    os.environ.update(pace)
    try:
        served = start_served_emulator(
            log_path, "--running-seconds", "0.2", "--submits-per-second", "50"
        )
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield served
    finally:
        stop(served)


@contextlib.contextmanager
def threaded_emulator(config: EmulatorConfig) -> Iterator[tuple[Emulator, str]]:
    """An Emulator on the real clock, served from a thread: it and its API base URL."""
    emulator = Emulator(config)
    server = serve(emulator, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield emulator, f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()
