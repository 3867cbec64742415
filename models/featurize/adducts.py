"""Precursor ion arithmetic: neutral monoisotopic mass from precursor m/z and adduct, and ppm windows.

An adduct name such as ``[M+H]+``, ``[2M+Na]+``, ``[M-H2O+H]+``, ``[M+2H]2+``, ``[M]+*`` (radical) or
``[M+FA-H]-`` is parsed into n (molecules), charge z and the mass added to n*M; then
``m/z = (n*M + added - z * m_electron) / |z|``. Element masses are RDKit's most common isotope masses.

M is the sum of the molecule's atom masses as drawn (the PubChem convention, see ``Molecule.monoisotopic_mass``),
so a permanently charged molecule measured as ``[M]+`` has m/z = M - m_electron, like a radical cation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rdkit import Chem

ELECTRON_MASS = 0.000548579909
DEFAULT_ADDUCT = "[M+H]+"
# Abbreviations used in adduct names (formulas of the neutral species).
_ALIASES = {"FA": "CH2O2", "HAC": "C2H4O2", "ACN": "C2H3N", "MEOH": "CH4O", "DMSO": "C2H6OS", "TFA": "C2HF3O2"}
_ADDUCT = re.compile(r"^\[(\d*)M((?:[+-]\d*[A-Za-z][A-Za-z0-9]*)*)\](\d*)([+-])(\d*)[*.\u2022]?$")
_TERM = re.compile(r"([+-])(\d*)([A-Za-z][A-Za-z0-9]*)")
_ELEMENT = re.compile(r"([A-Z][a-z]?)(\d*)")


@lru_cache(maxsize=1)
def _element_masses() -> dict[str, float]:
    # asked up front: RDKit prints a C++ stack trace when asked about an unknown symbol
    table = Chem.GetPeriodicTable()
    return {table.GetElementSymbol(z): table.GetMostCommonIsotopeMass(z) for z in range(1, 119)}


def formula_mass(formula: str) -> float:
    """Monoisotopic mass of a plain formula such as ``C8H10O`` or ``NH4`` (no charges, no brackets)."""
    if not formula or _ELEMENT.sub("", formula):
        raise ValueError(f"{formula!r} is not a formula such as C8H10O")
    masses = _element_masses()
    mass = 0.0
    for symbol, count in _ELEMENT.findall(formula):
        if symbol not in masses:
            raise ValueError(f"unknown element {symbol!r} in {formula!r}")
        mass += masses[symbol] * (int(count) if count else 1)
    return mass


@dataclass(frozen=True)
class Adduct:
    """A precursor ion type: ``n_molecules`` * M plus ``added`` (atoms, no electrons), charge ``charge``."""

    name: str
    n_molecules: int
    charge: int
    added: float

    def mz(self, neutral_mass: float | np.ndarray) -> float | np.ndarray:
        """Precursor m/z of a molecule of monoisotopic mass ``neutral_mass``."""
        return (self.n_molecules * neutral_mass + self.added - self.charge * ELECTRON_MASS) / abs(self.charge)

    def neutral_mass(self, mz: float | np.ndarray) -> float | np.ndarray:
        """Monoisotopic mass M of the molecule whose ion has this precursor m/z."""
        return (mz * abs(self.charge) + self.charge * ELECTRON_MASS - self.added) / self.n_molecules


@lru_cache(maxsize=256)
def parse_adduct(name: str) -> Adduct:
    """Parse an adduct name (``[M+H]+``, ``[M+2H]2+``, ``[2M+Na]+``, ``[M-H2O+H]+``, ``[M]+*`` ...).

    Raises ValueError with the name for anything that is not ``[nM(+/-k X)...]z+/-``.
    """
    text = name.strip().replace(" ", "")
    m = _ADDUCT.match(text)
    if not m:
        raise ValueError(f"adduct {name!r} is not of the form [M+H]+, [M+2H]2+, [2M+Na]+, [M-H2O+H]+ ...")
    n_text, terms, charge_before, sign, charge_after = m.groups()
    if charge_before and charge_after:
        raise ValueError(f"adduct {name!r} gives its charge twice")
    charge = int(charge_before or charge_after or 1) * (1 if sign == "+" else -1)
    added = 0.0
    for term_sign, count, species in _TERM.findall(terms):
        formula = _ALIASES.get(species.upper(), species)
        try:
            mass = formula_mass(formula)
        except ValueError as exc:
            raise ValueError(f"adduct {name!r}: {exc}") from None
        added += (1 if term_sign == "+" else -1) * (int(count) if count else 1) * mass
    n_molecules = int(n_text) if n_text else 1
    if n_molecules == 0 or charge == 0:
        raise ValueError(f"adduct {name!r} has no molecule or no charge")
    return Adduct(text, n_molecules, charge, added)


def neutral_mass(precursor_mz: float | np.ndarray, adduct: str = DEFAULT_ADDUCT) -> float | np.ndarray:
    """Monoisotopic mass M of the molecule, from its precursor m/z and adduct (``[M+H]+`` by default)."""
    return parse_adduct(adduct).neutral_mass(precursor_mz)


def precursor_mz(mass: float | np.ndarray, adduct: str = DEFAULT_ADDUCT) -> float | np.ndarray:
    """Precursor m/z of a molecule of monoisotopic mass ``mass`` as ``adduct``."""
    return parse_adduct(adduct).mz(mass)


def ppm_window(mass: float, ppm: float) -> tuple[float, float]:
    """(low, high) masses within ``ppm`` parts per million of ``mass``."""
    if ppm < 0:
        raise ValueError(f"ppm must be >= 0, got {ppm}")
    delta = abs(mass) * ppm * 1e-6
    return mass - delta, mass + delta


def ppm_error(observed: float | np.ndarray, expected: float | np.ndarray) -> float | np.ndarray:
    """Signed difference of ``observed`` from ``expected`` in parts per million of ``expected``."""
    return (observed - expected) / expected * 1e6
