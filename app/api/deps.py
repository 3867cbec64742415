"""Request dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from starlette.datastructures import UploadFile

from app.service import ModelNotServed, Service
from models.spectra_model import SpectraModel

MODEL = Query(None, max_length=255, description="model name (default: the served model)")


async def get_service(request: Request) -> Service:
    """The process's :class:`Service` (built by the app's lifespan); async, so it needs no worker thread."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


async def served_model(service: ServiceDep, model: str | None = MODEL) -> SpectraModel:
    """The model named by the ``model`` query parameter (default: the served one); 404 when it is not served."""
    try:
        return service.model_for(model)
    except ModelNotServed as exc:
        raise HTTPException(404, str(exc)) from None


ServedModelDep = Annotated[SpectraModel, Depends(served_model)]


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters ("" when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_upload(request: Request, field: str = "file") -> tuple[bytes, str | None]:
    """(content, file name) of the multipart field ``field``; 422 when it is missing or not a file, 400 when
    empty. The upload limit and the time budget apply while the form is read (``RequestLimitMiddleware``)."""
    form = await request.form()
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, f"multipart field {field!r} must be a file upload")
    data = await upload.read()
    await form.close()
    if not data.strip():
        raise HTTPException(400, f"the uploaded file {upload.filename or ''!r} is empty")
    return data, upload.filename
