"""Build ``examples/``: a few real MassBank spectra of TEST-split structures (``query.mgf``, record blocks copied
verbatim with their LICENSE headers) and a CASMI-style candidate list per spectrum (``candidates/<TITLE>.tsv``: the
true structure among the pool structures nearest in mass, shuffled, so the ranking is not trivial).

    python -m training.spectra.examples --data ../shared/data --out examples
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np

from training.spectra.data import MASSBANK_FILE, load_spectra_data
from training.spectra.evaluate import Protocol, candidate_rows

ATTRIBUTION = (
    "# Spectra from MassBank (github.com/MassBank/MassBank-data, commit 13484d41), records of the test-split\n"
    "# structures; each record keeps its LICENSE header. Cite MassBank (Horai et al. 2010, J. Mass Spectrom.).\n"
)


def raw_blocks(path: Path, titles: set[str]) -> dict[str, str]:
    """The ``BEGIN IONS ... END IONS`` text of the records with these TITLEs, verbatim."""
    out, block, title = {}, [], None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            block.append(line)
            if line.startswith("TITLE="):
                title = line[6:].strip()
            elif line.strip() == "END IONS":
                if title in titles:
                    out[title] = "".join(block)
                block, title = [], None
    return out


def build_examples(data_dir: Path, out: Path, n_spectra: int = 5, n_candidates: int = 50, seed: int = 0) -> None:
    """Write ``out/query.mgf`` and ``out/candidates/<TITLE>.tsv`` (see the module docstring)."""
    data = load_spectra_data(data_dir)
    rng = np.random.default_rng(seed)
    test = data.split.test
    # [M+H]+ ESI records with an INCHIKEY header, one per structure, drawn at random
    eligible = [
        i
        for i in test
        if data.records[i].adduct == "[M+H]+"
        and (data.records[i].instrument or "").startswith("LC-ESI")
        and data.records[i].spectrum.inchikey
        and data.records[i].spectrum.n_peaks >= 5
    ]
    chosen, seen = [], set()
    for i in rng.permutation(eligible):
        if data.structure[i] not in seen:
            chosen.append(int(i))
            seen.add(data.structure[i])
        if len(chosen) == n_spectra:
            break
    titles = [data.records[i].title for i in chosen]
    blocks = raw_blocks(data_dir / MASSBANK_FILE, set(titles))
    out.mkdir(parents=True, exist_ok=True)
    (out / "query.mgf").write_text(ATTRIBUTION + "\n".join(blocks[t] for t in titles))
    folder = out / "candidates"
    folder.mkdir(exist_ok=True)
    pool = data.structures
    for i, title in zip(chosen, titles, strict=True):
        nearest = Protocol("nearest", n=n_candidates)
        rows, _ = candidate_rows(pool.masses, data.query_mass[i], int(data.structure[i]), nearest)
        rows = rng.permutation(rows)
        with open(folder / f"{title}.tsv", "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["smiles", "inchikey", "name"])
            for k, r in enumerate(rows):
                writer.writerow([pool.smiles[r], pool.inchikeys[r], f"massbank-structure-{k + 1}"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data", help="folder holding massbank/")
    parser.add_argument("--out", default="examples")
    parser.add_argument("--spectra", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build_examples(Path(args.data), Path(args.out), args.spectra, args.candidates, args.seed)


if __name__ == "__main__":
    main()
