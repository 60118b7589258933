"""Typed FastAPI dependencies: routes declare what they need instead of reading app state.

`create_app(services)` stores the one `Services` of the app; a route takes it as a parameter
annotated `ServicesDep`. The dependency is async so FastAPI resolves it on the event loop
(a sync one would cost a thread hop per request).
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from sla_engine.composition import Services


async def get_services(request: Request) -> Services:
    """The services the app was created with."""
    return services_of(request)


def services_of(request: Request) -> Services:
    """`get_services` called directly, for a hot route that declares no dependency (solving
    one costs FastAPI more than the lookup)."""
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]
