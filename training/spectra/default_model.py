"""Train the default model that ships in ``models/default`` (the documented command):

    python -m training.spectra.default_model --data ../shared/data

SVAE, supervision 1.0 (every training structure paired), the small configuration of
:mod:`training.spectra.experiment` (spectrum 11,000 -> 128 -> 128, fingerprint 2,215 -> 256 -> 256, latent 64),
Adam lr 1e-3, batch 256, 30 epochs, best epoch by validation top-10 among 256 mass-nearest candidates (a seeded
sample of 2,000 validation spectra), one torch thread. Trainer files go to ``--runs`` (``runs/spectra/svae_s1``,
the same run directory as the sweep's SVAE at supervision 1.0, so the sweep reuses it); the best epoch is written
as a model directory (float16 weights, card.json, README.md) to ``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from training.spectra.experiment import train_one

EPOCHS = 30
MAX_VALID = 2000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="train the shipped default spectra model")
    parser.add_argument("--data", default="../shared/data", help="folder holding massbank/")
    parser.add_argument("--out", default="models/default", help="model directory to write")
    parser.add_argument("--runs", default=None, help="trainer files (default runs/spectra/MODEL_s1)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--model", default="svae", help="network: svae (the default model), vaevae, mlp ...")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python -m training.spectra.default_model " + shlex.join(sys.argv[1:] if argv is None else argv)
    runs = args.runs or f"runs/spectra/{args.model}_s1"
    record = train_one(
        args.model, 1.0, args.epochs, args.data, runs, args.device, 0, max_valid=MAX_VALID,
        model_dir=args.out, model_name_in_card="default", command=command.strip(),
    )  # fmt: skip
    print({k: round(v, 4) for k, v in record["metrics"].items()})


if __name__ == "__main__":
    main()
