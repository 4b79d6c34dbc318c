"""An offline DashScope that speaks the real wire protocol (see README: the emulator).

The emulator stands in for the provider in `make run` without a key, in the tests and in
the demo. It is a witness, not a copy of the client: its rules are its own, written from
the seed documents (S0 and S1, the Text-to-Image guide in Japanese and Chinese; S2, the
Wan image-editing guide) and, where those are silent, from the official references they
cite, each value tagged with its source. It imports nothing of the client's own reading
(`studio.dashscope.catalog`, `studio.dashscope.validation`; a test checks), so that a
wrong belief of the client shows up here as a refusal or a surprise.

What each module answers:
- `core`: the emulator's state, which family a path belongs to, injected faults, the API
  key and the rate limits.
- `generation`: the sync and async generation endpoints; `streams`: their Server-Sent
  Events answers (wan2.6-image's mixed text and images); `running`: the running slot a
  sync call holds; `tasks`: fetching, cancelling and listing tasks, and when each runs;
  `uploads`: upload certificates, the OSS form upload and `oss://` inputs; `results`:
  signed result URLs and their downloads; `control`: the `/_emulator/` controls and
  counters; `request_log`: the request log.
- `wire`: a request and an answer as plain data, and the error shapes; `outputs`: a
  finished generation's `output` and `usage`; `render`: the result PNGs.
- `parse`: a generation body read as the service reads it. `rules` is the door to the
  rules: `limits` (their types and the endpoints), `qwen_models` and `wan_models` (the
  table), `readings` (the documents' contradictions), `request` (a request as read),
  `checks` and `sizes` (the refusals, and the size that comes out).
- `config`: timings, limits, lifetimes and faults; `wsgi` serves the emulator over HTTP
  and `transport` plugs it into httpx in-process.
"""

from studio.dashscope.emulator.config import Clock, EmulatorConfig, FakeClock, FaultRule
from studio.dashscope.emulator.core import Emulator
from studio.dashscope.emulator.transport import EmulatorTransport
from studio.dashscope.emulator.wire import EmRequest, EmResponse
from studio.dashscope.emulator.wsgi import make_wsgi_app, serve

__all__ = [
    "Clock",
    "EmRequest",
    "EmResponse",
    "Emulator",
    "EmulatorConfig",
    "EmulatorTransport",
    "FakeClock",
    "FaultRule",
    "make_wsgi_app",
    "serve",
]
