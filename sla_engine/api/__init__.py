"""The HTTP API (FastAPI): `create_app(services)`."""

from sla_engine.api.app import create_app

__all__ = ["create_app"]
