"""Featurization shared by training and the service: spectra (MGF/MSP/JSON) to binned vectors, molecules
(SMILES) to fingerprints, and precursor adduct arithmetic. The binning and fingerprint specs travel with each
model, so the service featurizes exactly as the model was trained."""

from models.featurize.adducts import DEFAULT_ADDUCT, neutral_mass, parse_adduct, ppm_window, precursor_mz
from models.featurize.binning import BinningSpec, featurize_spectra, featurize_spectrum
from models.featurize.fingerprints import (
    DEFAULT_FINGERPRINT_SPEC,
    FingerprintSpec,
    InvalidMoleculeError,
    Molecule,
    fingerprint_bits,
    molecule_from_smiles,
    pack_bits,
    parse_fingerprint_spec,
    unpack_bits,
)
from models.featurize.mgf import Spectrum, SpectrumError, read_spectra, read_spectra_from_json

__all__ = [
    "DEFAULT_ADDUCT",
    "DEFAULT_FINGERPRINT_SPEC",
    "BinningSpec",
    "FingerprintSpec",
    "InvalidMoleculeError",
    "Molecule",
    "Spectrum",
    "SpectrumError",
    "featurize_spectra",
    "featurize_spectrum",
    "fingerprint_bits",
    "molecule_from_smiles",
    "neutral_mass",
    "pack_bits",
    "parse_adduct",
    "parse_fingerprint_spec",
    "ppm_window",
    "precursor_mz",
    "read_spectra",
    "read_spectra_from_json",
    "unpack_bits",
]
