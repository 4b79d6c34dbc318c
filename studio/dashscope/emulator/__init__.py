"""An offline DashScope that speaks the real wire protocol (see README: the emulator)."""

from studio.dashscope.emulator.config import Clock, EmulatorConfig, FakeClock, FaultRule
from studio.dashscope.emulator.core import EmRequest, EmResponse, Emulator
from studio.dashscope.emulator.transport import EmulatorTransport
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
