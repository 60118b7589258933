"""The ASGI app each process of `sla-engine serve --workers N` runs.

uvicorn starts the worker processes and imports `create` in each (a factory, so nothing is
built at import). `serve` has already applied the migrations and passes the config file, the
database URL, the log level and the Prometheus multiprocess directory through the environment.
Each process configures its logging, builds its own services and runs its own background
loops, which several processes may run against one database (the escalation outbox is claimed
with leases, credit housekeeping books each expiry once under the account lock).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

CONFIG_ENV = "SLA_ENGINE_SERVE_CONFIG"
LOG_LEVEL_ENV = "SLA_ENGINE_SERVE_LOG_LEVEL"


def create() -> FastAPI:
    from sla_engine.api import create_app
    from sla_engine.composition import build_services, tune_gc_for_service
    from sla_engine.config import load_config
    from sla_engine.logging_setup import configure_logging

    log_level = os.environ.get(LOG_LEVEL_ENV, "info")
    configure_logging(log_level, access_log=log_level == "debug")
    config = load_config(os.environ.get(CONFIG_ENV) or None, stored_calendars=True)
    services = build_services(config, migrate=False)
    app = create_app(services)
    tune_gc_for_service()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.start_background()
        try:
            yield
        finally:
            services.close()

    app.router.lifespan_context = lifespan
    return app
