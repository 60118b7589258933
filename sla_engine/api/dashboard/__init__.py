"""The operator's dashboard: `GET /` and its static assets, served by the service itself.

Plain HTML, CSS and JavaScript shipped inside the package (no CDN, no build step). The page
is public; the data it shows comes from the `/v1` API, which asks for the bearer token.
"""

from sla_engine.api.dashboard.routes import router

__all__ = ["router"]
