"""``GET /v1/depict?smiles=``: a 2-D structure drawing (RDKit, SVG) for the web page."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, HTTPException, Query, Response
from rdkit.Chem.Draw import rdMolDraw2D

from models.featurize.fingerprints import InvalidMoleculeError, mol_from_smiles

router = APIRouter(tags=["web"])


@lru_cache(maxsize=4096)
def depict_svg(smiles: str, width: int, height: int) -> str:
    """SVG of the molecule (raises :class:`InvalidMoleculeError` for an unreadable SMILES)."""
    mol = rdMolDraw2D.PrepareMolForDrawing(mol_from_smiles(smiles))
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


@router.get(
    "/v1/depict",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, 422: {"description": "unreadable SMILES"}},
)
def depict(
    smiles: str = Query(min_length=1, max_length=2000),
    width: int = Query(240, ge=32, le=2000),
    height: int = Query(180, ge=32, le=2000),
) -> Response:
    """The structure of ``smiles`` drawn by RDKit, as SVG."""
    try:
        svg = depict_svg(smiles, width, height)
    except InvalidMoleculeError as exc:
        raise HTTPException(422, str(exc)) from None
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
