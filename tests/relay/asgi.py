"""The real ASGI application plus the relay tests' card programs (started by tests/relay/live.py)."""

from config.asgi import application
from tests.relay import programs  # noqa: F401 - registers the test programs in this process

__all__ = ["application"]
