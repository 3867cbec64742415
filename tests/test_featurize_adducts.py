"""Adduct arithmetic against hand-computed m/z values, and against MassBank's precursor m/z and RDKit masses."""

from __future__ import annotations

import numpy as np
import pytest

from models.featurize.adducts import neutral_mass, parse_adduct, ppm_error, ppm_window, precursor_mz
from training.spectra.dataset import load_massbank

# most common isotope masses and the electron
H, C, N, O, NA, K, E = 1.00782503223, 12.0, 14.00307400443, 15.99491461957, 22.9897692820, 38.9637064864, 0.000548579909
CAFFEINE = 194.080376


@pytest.mark.parametrize(
    ("adduct", "mz"),
    [
        ("[M+H]+", CAFFEINE + H - E),
        ("[M]+", CAFFEINE - E),
        ("[M]+*", CAFFEINE - E),
        ("[M+Na]+", CAFFEINE + NA - E),
        ("[M+K]+", CAFFEINE + K - E),
        ("[M+NH4]+", CAFFEINE + N + 4 * H - E),
        ("[M+H-H2O]+", CAFFEINE + H - (2 * H + O) - E),
        ("[M-H2O+H]+", CAFFEINE + H - (2 * H + O) - E),
        ("[M+2H]2+", (CAFFEINE + 2 * H - 2 * E) / 2),
        ("[2M+Na]+", 2 * CAFFEINE + NA - E),
        ("[M-H]-", CAFFEINE - H + E),
        ("[M+FA-H]-", CAFFEINE + (C + 2 * H + 2 * O) - H + E),
        ("[M+CH3]+", CAFFEINE + C + 3 * H - E),
    ],
)
def test_adduct_mz_by_hand(adduct, mz):
    assert precursor_mz(CAFFEINE, adduct) == pytest.approx(mz, abs=2e-6)
    assert neutral_mass(mz, adduct) == pytest.approx(CAFFEINE, abs=2e-6)


def test_parse_adduct():
    a = parse_adduct(" [M + 2H] 2+ ")
    assert (a.n_molecules, a.charge) == (1, 2)
    assert parse_adduct("[M+H]+").charge == 1 and parse_adduct("[M-H]-").charge == -1
    for bad in ("M+H", "[M+Xy]+", "[M+H]", "[0M+H]+", "[M+H]2+2"):
        with pytest.raises(ValueError, match="adduct"):
            parse_adduct(bad)


def test_arrays_and_ppm():
    masses = np.array([100.0, 500.0])
    np.testing.assert_allclose(neutral_mass(precursor_mz(masses, "[M+Na]+"), "[M+Na]+"), masses)
    assert ppm_window(1000.0, 10) == pytest.approx((999.99, 1000.01))
    assert ppm_error(1000.01, 1000.0) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        ppm_window(100.0, -1)


def test_massbank_precursors_match_structures(shared_data):
    """MassBank's precursor m/z, read back through the adduct to a neutral mass, matches the RDKit mass of the
    record's SMILES within 10 ppm for nearly all [M+H]+ spectra."""
    data = load_massbank(shared_data / "massbank/massbank-pos-ms2.mgf.gz", limit=2000)
    errors = np.array(
        [
            ppm_error(neutral_mass(r.spectrum.precursor_mz, r.adduct), r.monoisotopic_mass)
            for r in data
            if r.adduct == "[M+H]+"
        ]
    )
    assert len(errors) > len(data) / 2  # most records are [M+H]+
    assert np.mean(np.abs(errors) < 10) > 0.97
