"""The paper's own numbers, to print beside ours (Kutuzova et al., ``../shared/paper.txt``, section 4).

Only what the text states as numbers is here: Table 1 (MNIST-Split, models trained on the fully supervised data).
Figures 6-9 (all supervision levels; MNIST-Split-3, MNIST-SVHN, CUB) are plots whose values the text does not
give, so no numbers are read off them; their claims are kept as sentences in :data:`PAPER_CLAIMS`.
"""

from __future__ import annotations

from typing import Any

# Table 1: "Evaluation of the models trained on the fully supervised datasets." Oracle accuracy of the image
# reconstructed given both halves, the top half and the bottom half.
TABLE_1: dict[str, dict[str, float]] = {
    "mmvae": {"both": 0.539, "top": 0.221, "bottom": 0.283},
    "svae": {"both": 0.948, "top": 0.872, "bottom": 0.816},
    "vaevae": {"both": 0.956, "top": 0.887, "bottom": 0.830},
    "vaevae-star": {"both": 0.958, "top": 0.863, "bottom": 0.778},
}

# The paper's names of our registry's models.
PAPER_NAMES = {"mmvae": "MMVAE", "svae": "SVAE", "vaevae": "VAEVAE", "vaevae-star": "VAEVAE*", "mvae": "MVAE"}

# What the text says about each figure (quoted or closely paraphrased; the figures' values are not in the text).
PAPER_CLAIMS: dict[str, list[str]] = {
    "mnist-split": [
        "Table 1 (100% supervision): VAEVAE* 0.958 / VAEVAE 0.956 / SVAE 0.948 / MMVAE 0.539 from both halves.",
        "Figure 6: all PoE architectures clearly outperformed MMVAE even when trained on the low supervision levels.",
        "Figure 6: the SVAE loss (eq. 22) gave the best results for very low supervision (SVAE and VAEVAE*).",
        "Best epoch: highest top-half accuracy (the paper's code: on the test half it reports).",
    ],
    "mnist-split-3": [
        "Figure 7: SVAE performed better than VAEVAE when reconstructing from individual modalities, "
        "but worse when all three modalities are given.",
    ],
    "mnist-svhn": [
        "Figure 8: all three PoE models reached a joint coherence similar to MMVAE; VAEVAE scored even higher.",
        "Figure 8: cross-coherence was best for MMVAE; the PoE models were considerably better than MVAE.",
    ],
    "cub-captions": [
        "Figure 9: VAEVAE showed the best performance among all models; with full supervision it outperformed "
        "MMVAE in all three metrics.",
        "Figure 9: cross-coherence of the three PoE models was higher than or equal to MMVAE's except at very low "
        "supervision levels; all PoE models were consistently better than MVAE.",
    ],
}


def paper_results(experiment: str) -> list[dict[str, Any]]:
    """The paper's numbers for ``experiment`` in the report's shape ``[{"model", "supervision", "metrics"}]``,
    with ``"source"``; empty where the paper gives only figures."""
    if experiment != "mnist-split":
        return []
    return [
        {"model": model, "supervision": 1.0, "metrics": dict(metrics), "source": "Table 1"}
        for model, metrics in TABLE_1.items()
    ]


def paper_claims(experiment: str) -> list[str]:
    """The paper's statements about ``experiment`` (empty list when it has none)."""
    return list(PAPER_CLAIMS.get(experiment, []))
