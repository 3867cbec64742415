"""Request dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import UploadFile

from app.service import Service


async def get_service(request: Request) -> Service:
    """The process's :class:`Service` (built by the app's lifespan); async, so it needs no worker thread."""
    return request.app.state.service


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters ("" when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_upload(request: Request, field: str = "file") -> tuple[bytes, str | None]:
    """(content, file name) of the multipart field ``field``; 422 when it is missing or not a file, 400 when
    empty. The upload limit applies while the form is read (``UploadLimitMiddleware``)."""
    form = await request.form()
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, f"multipart field {field!r} must be a file upload")
    data = await upload.read()
    await form.close()
    if not data.strip():
        raise HTTPException(400, f"the uploaded file {upload.filename or ''!r} is empty")
    return data, upload.filename


ServiceDep = Annotated[Service, Depends(get_service)]
