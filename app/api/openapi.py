"""Request bodies that an endpoint reads itself (JSON or a multipart upload on one path), described in the OpenAPI
schema: FastAPI documents only bodies it parses, so these are added by hand."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_models: list[type[BaseModel]] = []


def request_body(json_model: type[BaseModel] | None, upload_description: str) -> dict[str, Any]:
    """``openapi_extra`` for an endpoint taking ``json_model`` as JSON and/or a multipart ``file``."""
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary", "description": upload_description}},
                "required": ["file"],
            }
        }
    }
    if json_model is not None:
        _models.append(json_model)
        content["application/json"] = {"schema": {"$ref": _REF.format(model=json_model.__name__)}}
    return {"requestBody": {"required": True, "content": content}}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the schemas of the hand-described request bodies."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _models:
                body = model.model_json_schema(ref_template=_REF)
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
