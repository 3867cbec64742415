"""The models on a CUDA device compute what they compute on the CPU: the shipped spectra model's fingerprint
probabilities, every MNIST-Split model's encoders (which use the library's convolutions on CUDA where the CPU
takes the matrix-product ones), and a semi-supervised training step that moves every parameter.

Skipped where torch sees no CUDA device (CI); run on a lent GPU by ``benchmarks/gpu_checks.sh``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from models import MODEL_NAMES, MultimodalBatch, build_model
from models.encoders import GaussianEncoder, JointEncoder
from models.featurize import read_spectra
from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel
from training.trainer import adam

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _full_precision_matmuls():
    # TF32 would round the products to 10 mantissa bits; the comparison is of the same arithmetic
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_shipped_model_predicts_the_same_fingerprints_on_cuda() -> None:
    spectra = [s for s in read_spectra(DATA / "massbank" / "massbank-pos-ms2.mgf.gz") if not isinstance(s, Exception)]
    cpu = SpectraModel.load(DEFAULT_MODEL_DIR, device="cpu").predict(spectra).probs
    cuda_model = SpectraModel.load(DEFAULT_MODEL_DIR, device="cuda")
    assert cuda_model.device.type == "cuda"
    cuda = cuda_model.predict(spectra).probs
    assert np.isfinite(cpu).all() and cpu.shape == cuda.shape and len(spectra) > 10
    np.testing.assert_allclose(cuda, cpu, rtol=1e-4, atol=1e-5)


def _mnist_halves(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(DATA / "mnist" / "mnist.npz") as data:
        images = data["x_train"][:n]
    x = torch.tensor(images, dtype=torch.float32).div(255).unsqueeze(1)
    return x[:, :, :14], x[:, :, 14:]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_encoders_agree_and_a_training_step_moves_every_parameter_on_cuda(name: str) -> None:
    torch.manual_seed(0)
    top, bottom = _mnist_halves(24)
    cpu_model = build_model(name, "mnist-split")
    model = copy.deepcopy(cpu_model).cuda()
    inputs = {"top": top, "bottom": bottom}
    for (path, cpu_module), (_, cuda_module) in zip(cpu_model.named_modules(), model.named_modules(), strict=True):
        if isinstance(cpu_module, GaussianEncoder):
            modality = path.split("__from__")[-1].split(".")[-1]  # experts.<target>__from__<input>, unimodal.<input>
            expected, got = cpu_module(inputs[modality]), cuda_module(inputs[modality].cuda())
        elif isinstance(cpu_module, JointEncoder):
            expected = cpu_module({m: inputs[m] for m in cpu_module.modalities})
            got = cuda_module({m: inputs[m].cuda() for m in cpu_module.modalities})
        else:
            continue
        torch.testing.assert_close(got.mean.cpu(), expected.mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got.logvar.cpu(), expected.logvar, rtol=1e-4, atol=1e-5)

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimiser = adam(model.parameters(), 1e-3)
    batch = MultimodalBatch(
        paired={"top": top[:8].cuda(), "bottom": bottom[:8].cuda()},
        unpaired={"top": top[8:16].cuda(), "bottom": bottom[16:].cuda()},
    )
    out = model.loss(batch)
    assert torch.isfinite(out.total)
    optimiser.zero_grad(set_to_none=True)
    out.total.backward()
    optimiser.step()
    unmoved = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert not unmoved, f"{name}: parameters a CUDA step left untouched: {unmoved[:5]}"
