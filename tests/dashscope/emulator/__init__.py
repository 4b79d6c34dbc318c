"""Tests of studio.dashscope.emulator: the stand-in for DashScope."""
