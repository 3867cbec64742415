"""``GET /health`` and ``GET /v1/models``."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServiceDep
from app.api.schemas import Health, ModelInfo, ModelList

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
async def health(service: ServiceDep) -> Health:
    """Liveness and what is served: model, device, number of candidate molecules (answered on the event loop, so
    it stays responsive while every worker thread is busy annotating)."""
    return Health(status="ok", model=service.model.name, device=service.device, candidates=len(service.store))


@router.get("/v1/models", response_model=ModelList)
async def list_models(service: ServiceDep) -> ModelList:
    """The models this server serves, with fingerprint spec, binning and model card."""
    model = service.model
    info = ModelInfo(
        name=model.name,
        network=model.model_name,
        fingerprint_spec=model.fingerprint_spec.text,
        n_bits=model.fingerprint_spec.n_bits,
        binning=model.binning.to_dict(),
        device=service.device,
        card=model.card,
    )
    return ModelList(models=[info])
