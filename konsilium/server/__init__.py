"""The OpenAI-compatible HTTP server (FastAPI): `create_app(engine)` builds it, `konsilium serve` runs it."""

from .app import create_app

__all__ = ["create_app"]
