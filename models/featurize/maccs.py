"""RDKit's MACCS keys, bit for bit, in about 80% of the time ``rdMolDescriptors.GetMACCSKeysFingerprint`` takes.

RDKit's MACCS keys were half of a candidate import's RDKit work (0.56 of ~1.1 ms a MOSES molecule, with parsing,
the InChIKey and the canonical SMILES; ``benchmarks/results/featurize-emr2.json``). RDKit matches its keys' SMARTS
one after the other; its ring keys (a ring of 3 to 7 atoms, with or without a heteroatom, more than one 6-ring, a
ring of 8 to 14 atoms) walk paths round the ring atoms, and the last of them, seven recursive SMARTS of 8 to 14 ring
atoms, took a fifth of the whole on its own (timed key by key).
Here the ring keys come from the molecule's simple cycles, each a sum (symmetric difference of bond sets) of the
rings RDKit perceived within one fused system (rings that share no bond share no cycle), and the other keys from
one ``FilterCatalog`` call over RDKit's own SMARTS (``MACCSkeys.smartsPatts``, each with its minimum match count),
evaluated in C++. A caller that needs only some keys (a fingerprint spec's bit selection: the shipped model keeps
144) gets a catalog of those alone: a SMARTS search that fails at once still costs ~1 us in the catalog (RDKit
2026.09 swaps a Ctrl-C handler in and out around every search, two system calls, 0.6-0.75 us; 2024.09 did not),
and the 19 SMARTS keys the shipped model drops took ~50 of ~500 us a MOSES molecule. ``tests/test_maccs.py`` pins
the result to RDKit's fingerprint bit for bit (and 120,000 MOSES test molecules matched it when this was written, as
did the selected bits of all 1.94M imported molecules); ``benchmarks/featurize.py`` times both.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from rdkit import Chem
from rdkit.Chem import FilterCatalog, MACCSkeys, rdMolDescriptors

#: RDKit's MACCS fingerprint length (bit 0 and key 1 are never set).
MACCS_BITS = 167
#: a cycle of this many atoms exists; and one with an atom other than C or H
_CYCLE_KEYS = {3: 22, 4: 11, 5: 96, 6: 163, 7: 19}
_HETERO_CYCLE_KEYS = {3: 16, 4: 8, 5: 83, 6: 98}
_SIX_RINGS_KEY = 145  # more than one 6-cycle (as atom sets, as a uniquified SMARTS match counts them)
_LARGE_RING_KEY = 101  # a cycle of 8 to 14 atoms
_LARGE_RING = range(8, 15)
_RING_KEYS = {*_CYCLE_KEYS.values(), *_HETERO_CYCLE_KEYS.values(), _SIX_RINGS_KEY, _LARGE_RING_KEY}
_AROMATIC_RINGS_KEY = 125  # more than one aromatic ring
_FRAGMENTS_KEY = 166  # more than one fragment
#: Fused systems of more perceived rings than this (cages, fullerenes: 2^k sums) take the ring keys' SMARTS.
MAX_FUSED_RINGS = 10


def _catalog(keys: Iterable[int]) -> FilterCatalog.FilterCatalog:
    """RDKit's MACCS SMARTS of ``keys`` as a catalog: an entry's description is its key number, and it matches
    where the SMARTS has more (unique) matches than the key's count."""
    catalog = FilterCatalog.FilterCatalog()
    for key in sorted(keys):
        smarts, count = MACCSkeys.smartsPatts[key]
        if smarts != "?":
            matcher = FilterCatalog.SmartsMatcher(str(key), smarts, count + 1)
            catalog.AddEntry(FilterCatalog.FilterCatalogEntry(str(key), matcher))
    return catalog


@lru_cache(maxsize=16)
def _key_catalog(keys: frozenset[int]) -> FilterCatalog.FilterCatalog:
    """The catalog of the keys of ``keys`` other than the ring keys (cached by the set: a spec's keys are one)."""
    return _catalog(keys - _RING_KEYS)


@lru_cache(maxsize=1)
def _ring_catalog() -> FilterCatalog.FilterCatalog:
    """The ring keys' SMARTS, for molecules whose cycles are too many to sum (:func:`_cycles`)."""
    return _catalog(_RING_KEYS)


@lru_cache(maxsize=1)
def _ring_heteroatom() -> Chem.Mol:
    return Chem.MolFromSmarts("[!#6;!#1;R]")


def _catalog_keys(catalog: FilterCatalog.FilterCatalog, mol: Chem.Mol) -> list[int]:
    return [int(entry.GetDescription()) for entry in catalog.GetMatches(mol)]


def _ring_edges(ring: tuple[int, ...]) -> list[tuple[int, int]]:
    """The bonds of a ring given as its atoms in ring order (RDKit's ``AtomRings``), as sorted atom pairs."""
    return [(a, b) if a < b else (b, a) for a, b in zip(ring, ring[1:] + ring[:1], strict=True)]


def _fused_cycles(rings: list[list[tuple[int, int]]]) -> list[frozenset[int]]:
    """The simple cycles of 3 to 14 atoms of one fused system (its rings' bonds, :func:`_ring_edges`), as atom sets:
    the sums of its rings (bond sets, as bit masks) in which every atom has two bonds and one walk meets them all."""
    index: dict[tuple[int, int], int] = {}
    masks = [sum(1 << index.setdefault(edge, len(index)) for edge in ring) for ring in rings]
    edges = list(index)
    sums = {0}
    for mask in masks:
        sums |= {s ^ mask for s in sums}
    cycles = []
    for s in sums:
        if not 3 <= s.bit_count() < _LARGE_RING.stop:
            continue
        neighbours: dict[int, list[int]] = {}
        for i, (a, b) in enumerate(edges):
            if s >> i & 1:
                neighbours.setdefault(a, []).append(b)
                neighbours.setdefault(b, []).append(a)
        if any(len(n) != 2 for n in neighbours.values()):
            continue
        start = next(iter(neighbours))
        previous, atom, seen = start, neighbours[start][0], 1
        while atom != start:
            previous, atom = atom, next(n for n in neighbours[atom] if n != previous)
            seen += 1
        if seen == len(neighbours):
            cycles.append(frozenset(neighbours))
    return cycles


def _cycles(mol: Chem.Mol) -> list[frozenset[int]] | None:
    """The molecule's simple cycles of 3 to 14 atoms (atom sets), or None where a fused system has more than
    :data:`MAX_FUSED_RINGS` rings. A ring that shares no bond with another is its system's only cycle."""
    rings = mol.GetRingInfo().AtomRings()
    atoms = [a for ring in rings for a in ring]
    if len(set(atoms)) == len(atoms):  # no atom in two rings (most molecules): the rings are the cycles
        return [frozenset(ring) for ring in rings]
    ring_edges = [_ring_edges(ring) for ring in rings]
    owner: dict[tuple[int, int], int] = {}  # bond -> a ring of its fused system (union-find over rings)
    parent = list(range(len(rings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = i = parent[parent[i]]
        return i

    for i, edges in enumerate(ring_edges):
        for edge in edges:
            if edge in owner:
                parent[root(i)] = root(owner[edge])
            else:
                owner[edge] = i
    systems: dict[int, list[int]] = {}
    for i in range(len(rings)):
        systems.setdefault(root(i), []).append(i)
    cycles = []
    for system in systems.values():
        if len(system) > MAX_FUSED_RINGS:
            return None
        cycles += [frozenset(rings[system[0]])] if len(system) == 1 else _fused_cycles([ring_edges[i] for i in system])
    return cycles


def _ring_keys(mol: Chem.Mol) -> list[int]:
    """The ring keys that are set, from the molecule's cycles (or their SMARTS where it has too many)."""
    cycles = _cycles(mol)
    if cycles is None:
        return _catalog_keys(_ring_catalog(), mol)
    if not cycles:
        return []
    hetero = {match[0] for match in mol.GetSubstructMatches(_ring_heteroatom(), uniquify=False, maxMatches=1 << 20)}
    keys = set()
    six = set()
    for cycle in cycles:
        size = len(cycle)
        if size in _CYCLE_KEYS:
            keys.add(_CYCLE_KEYS[size])
            if size in _HETERO_CYCLE_KEYS and not hetero.isdisjoint(cycle):
                keys.add(_HETERO_CYCLE_KEYS[size])
            if size == 6:
                six.add(cycle)
        elif size in _LARGE_RING:
            keys.add(_LARGE_RING_KEY)
    if len(six) > 1:
        keys.add(_SIX_RINGS_KEY)
    return list(keys)


#: every MACCS key
ALL_KEYS = frozenset(range(1, MACCS_BITS))


def maccs_keys(mol: Chem.Mol, keys: frozenset[int] = ALL_KEYS) -> list[int]:
    """The MACCS keys (1..166) set for a sanitized molecule: the on bits of RDKit's ``GetMACCSKeysFingerprint``;
    only those of ``keys`` are looked for (a fingerprint spec's bit selection leaves the others out)."""
    found = _catalog_keys(_key_catalog(keys), mol)
    if not keys.isdisjoint(_RING_KEYS):
        found += [key for key in _ring_keys(mol) if key in keys]
    if _AROMATIC_RINGS_KEY in keys and rdMolDescriptors.CalcNumAromaticRings(mol) > 1:
        found.append(_AROMATIC_RINGS_KEY)
    if _FRAGMENTS_KEY in keys and len(Chem.GetMolFrags(mol)) > 1:
        found.append(_FRAGMENTS_KEY)
    return found


def maccs_bits(mol: Chem.Mol, keys: frozenset[int] = ALL_KEYS) -> np.ndarray:
    """:func:`maccs_keys` as RDKit's 167 bits (uint8 0/1; bit 0 unused; a key not in ``keys`` is 0)."""
    bits = np.zeros(MACCS_BITS, dtype=np.uint8)
    bits[maccs_keys(mol, keys)] = 1
    return bits
