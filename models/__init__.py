"""Multimodal VAEs of Kutuzova et al.: SVAE, VAEVAE (a, b), VAEVAE*, SVAE*, and the baselines MMVAE, MVAE and
JMVAE, trainable semi-supervised on batches of paired and unpaired samples.

    from models import build_model, MultimodalBatch
    model = build_model("svae", experiment="mnist-split")
    out = model.loss(MultimodalBatch(paired={"top": x1, "bottom": x2}, unpaired={"top": u1}))
    q = model.posterior({"top": x1})

The names below are imported on first use, so that ``models.featurize`` (used by the service and the candidate
import) does not load torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MODEL_NAMES": "models.registry",
    "build_model": "models.registry",
    "MultimodalVAE": "models.base",
    "LossOutput": "models.batch",
    "MultimodalBatch": "models.batch",
    "DiagonalGaussian": "models.gaussian",
    "kl_divergence": "models.gaussian",
    "product_of_experts": "models.gaussian",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
