"""Multimodal VAEs of Kutuzova et al.: SVAE, VAEVAE (a, b), VAEVAE*, SVAE*, and the baselines MMVAE, MVAE and
JMVAE, trainable semi-supervised on batches of paired and unpaired samples.

    from models import build_model, MultimodalBatch
    model = build_model("svae", experiment="mnist-split")
    out = model.loss(MultimodalBatch(paired={"top": x1, "bottom": x2}, unpaired={"top": u1}))
    q = model.posterior({"top": x1})
"""

from models.base import MultimodalVAE
from models.batch import LossOutput, MultimodalBatch
from models.gaussian import DiagonalGaussian, kl_divergence, product_of_experts
from models.registry import MODEL_NAMES, build_model

__all__ = [
    "MODEL_NAMES",
    "DiagonalGaussian",
    "LossOutput",
    "MultimodalBatch",
    "MultimodalVAE",
    "build_model",
    "kl_divergence",
    "product_of_experts",
]
