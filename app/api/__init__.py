"""The HTTP API: one router per resource (DESIGN.md endpoints)."""

from fastapi import APIRouter

from app.api import annotate, candidates, depict, health, jobs

api_router = APIRouter()
for module in (health, annotate, candidates, jobs, depict):
    api_router.include_router(module.router)

__all__ = ["api_router"]
