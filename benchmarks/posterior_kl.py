"""Does SVAE's posterior collapse to the prior? KL(q(z|top) || N(0, I)) on held-out MNIST tops over training,
for the experts' variance parametrisations with and without the N(0, I) prior expert.

The setting of issue 11's check: 3,000 MNIST training images, 10% paired, batch 32 paired + 32 + 32 unpaired
drawn from all images, Adam lr 1e-3, 300 steps, the MNIST-Split networks; KL on the first 1,000 MNIST test images.
``--images 6000 --unpaired rest`` is the setting in which the old head was seen to collapse (issue 11).

    python3 benchmarks/posterior_kl.py [--data DIR] [--images 3000] [--unpaired all|rest] [--steps 300]
                                       [--seeds 0 1 2] [--threads 1] [--name posterior_kl]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

VARIANTS = {
    "softplus, prior expert (default)": {"expert_variance": "softplus", "prior_expert": True},
    "softplus, no prior expert": {"expert_variance": "softplus", "prior_expert": False},
    "exp + clamp, prior expert (old head)": {"expert_variance": "exp", "prior_expert": True},
    "exp + clamp, no prior expert (old default)": {"expert_variance": "exp", "prior_expert": False},
}


def main() -> None:
    from _machine import add_data_argument, save

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per run")
    parser.add_argument("--images", type=int, default=3000, help="MNIST training images (the first N)")
    parser.add_argument("--unpaired", choices=["all", "rest"], default="all", help="where unpaired batches come from")
    parser.add_argument("--name", default="posterior_kl", help="results file benchmarks/results/NAME.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed and variant")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()

    import numpy as np
    import torch

    from models import build_model
    from training.diagnostics import mnist_images, posterior_kl_run

    torch.set_num_threads(args.threads)
    mnist = np.load(args.data / "mnist" / "mnist.npz")
    train, held_out = mnist_images(mnist["x_train"][: args.images]), mnist_images(mnist["x_test"][:1000])
    figures: dict[str, dict] = {}
    for name, kwargs in VARIANTS.items():
        runs = []
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = build_model("svae", "mnist-split", **kwargs)
            trace = posterior_kl_run(model, train, held_out, steps=args.steps, seed=seed, unpaired=args.unpaired)
            runs.append({"seed": seed, "steps": trace.steps, "kl_top": [round(v, 3) for v in trace.kl_top],
                         "share_at_clamp": [round(v, 3) for v in trace.at_clamp],
                         "last_terms": {k: round(v, 3) for k, v in trace.last_terms.items()}})  # fmt: skip
            print(f"{name:45s} seed {seed}: KL(q(z|top)||N(0,I)) at steps {trace.steps}: "
                  f"{', '.join(f'{v:.2f}' for v in trace.kl_top)}; share of expert log-variances at the clamp "
                  f"{trace.at_clamp[-1]:.2f}", flush=True)  # fmt: skip
        final = [r["kl_top"][-1] for r in runs]
        figures[name] = {"runs": runs, "final_kl_mean": float(np.mean(final)), "final_kl_min": float(np.min(final)),
                         "final_kl_max": float(np.max(final))}  # fmt: skip
    setting = {"images": args.images, "supervision": 0.1, "unpaired": args.unpaired, "batch": "32 + 32 + 32",
               "lr": 1e-3, "steps": args.steps, "held_out": "first 1,000 MNIST test tops"}  # fmt: skip
    path = save(args.name, {"setting": setting, "variants": figures})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
