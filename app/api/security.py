"""The API key of write endpoints: when ``MSVAE_API_KEY`` is set, requests must carry it as ``X-API-Key`` or as
``Authorization: Bearer <key>``; otherwise 401."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the service's MSVAE_API_KEY")
_bearer = HTTPBearer(auto_error=False, description="the service's MSVAE_API_KEY as a bearer token")


def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency of write endpoints; a no-op when the service has no API key."""
    expected = request.app.state.settings.api_key
    if not expected:
        return
    for given in (api_key, bearer.credentials if bearer else None):
        # compare_digest: the time taken does not tell how much of a guess was right
        if given and hmac.compare_digest(given.encode(), expected.encode()):
            return
    raise HTTPException(
        401,
        "this endpoint needs the API key (header X-API-Key or Authorization: Bearer)",
        {"WWW-Authenticate": "Bearer"},
    )
