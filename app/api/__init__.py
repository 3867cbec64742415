"""The HTTP API: one router per resource (DESIGN.md endpoints)."""

from fastapi import APIRouter

from app.api import annotate, candidates, depict, health, jobs

_MODULES = (health, annotate, candidates, jobs, depict)
api_router = APIRouter()
for module in _MODULES:
    api_router.include_router(module.router)
# Every endpoint route (the routers use no prefix, so their paths are the full paths).
api_routes = [route for module in _MODULES for route in module.router.routes]

__all__ = ["api_router", "api_routes"]
