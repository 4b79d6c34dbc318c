"""Helpers the tests share: fixtures (registered as plugins by tests/conftest.py),
factories, and the pieces several test modules use."""
