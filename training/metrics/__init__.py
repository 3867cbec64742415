"""Evaluation metrics of the image experiments: oracle coherence (MNIST-SVHN), split accuracy / synergy
(MNIST-Split), CCA correlation (CUB captions)."""

from training.metrics.cca import CCAProjection, SentenceEmbedder, cca_correlation, cub_coherence, fit_cca
from training.metrics.coherence import cross_coherence, joint_coherence
from training.metrics.synergy import split_accuracy

__all__ = [
    "CCAProjection",
    "SentenceEmbedder",
    "cca_correlation",
    "cross_coherence",
    "cub_coherence",
    "fit_cca",
    "joint_coherence",
    "split_accuracy",
]
