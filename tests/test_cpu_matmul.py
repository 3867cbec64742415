"""The oneDNN linear of training on the CPU is F.linear: the same output and the same gradients (against float64),
and it is the path a training step takes (on machines where it is chosen; forced on here so that every machine
checks it) while inference keeps the library's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import MultimodalBatch, build_model
from models.networks import cpu_matmul
from models.networks.cpu_matmul import Linear, cpu_info, cpu_vendor, dense, linear, onednn_beats_mkl

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this torch build")


@pytest.fixture(autouse=True)
def onednn_products(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oneDNN path on, whatever this machine's CPU."""
    monkeypatch.setattr(cpu_matmul, "ONEDNN_PRODUCTS", True)


def test_onednn_is_chosen_where_mkl_runs_below_the_core_width() -> None:
    assert onednn_beats_mkl("AuthenticAMD") and onednn_beats_mkl("HygonGenuine")
    assert not onednn_beats_mkl("GenuineIntel")
    assert not onednn_beats_mkl("")  # no vendor_id: another architecture, or no /proc


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="no /proc/cpuinfo here")
def test_cpu_info_reads_the_first_processor() -> None:
    info = cpu_info()
    assert info["processor"] == "0"  # fields of later processors do not overwrite the first one's
    assert cpu_vendor() == info.get("vendor_id", "")


def test_the_library_path_where_onednn_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_matmul, "ONEDNN_PRODUCTS", False)
    assert not _takes_onednn(Linear(768, 512)(torch.randn(200, 768)))


def _takes_onednn(y: torch.Tensor) -> bool:
    """Whether the autograd graph of ``y`` holds the oneDNN product (under the view back to x's leading shape)."""
    seen, stack = set(), [y.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "_OneDnnLinearBackward":
            return True
        stack += [next_node for next_node, _ in node.next_functions]
    return False


@pytest.mark.parametrize(
    "lead, k, n, bias, transposed_weight",
    [
        ((600,), 1536, 256, False, False),  # MNIST-Split's last convolution as a product (3 positions x 200)
        ((200,), 768, 512, True, False),  # an encoder's FC layer
        ((200,), 112, 840, False, True),  # the decoder's 1 x 1 transposed convolution: a transposed weight view
        ((4, 50), 300, 128, True, False),  # leading dimensions beyond one
    ],
)
def test_linear_is_f_linear_with_its_gradients(lead, k, n, bias, transposed_weight) -> None:
    torch.manual_seed(0)
    x = torch.randn(*lead, k, requires_grad=True)
    w_data = torch.randn(k, n).t() if transposed_weight else torch.randn(n, k)
    w = (w_data / k**0.5).requires_grad_()
    b = torch.randn(n, requires_grad=True) if bias else None
    y = linear(x, w, b)
    assert _takes_onednn(y)
    params = [x, w] + ([b] if bias else [])
    ref_params = [p.detach().double().requires_grad_() for p in params]
    ref = F.linear(*ref_params[:2], ref_params[2] if bias else None)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(y)
    grads = torch.autograd.grad(y, params, grad)
    ref_grads = torch.autograd.grad(ref, ref_params, grad.double())
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


def test_dense_copies_only_what_is_not_packed_row_or_column_major() -> None:
    m = torch.randn(256, 2048)
    transposed = m.t()
    assert dense(m) is m and dense(transposed) is transposed
    sliced = m[:, 512:]  # a column slice: rows 2048 apart, 1536 wide
    packed = dense(sliced)
    assert packed.is_contiguous() and packed.data_ptr() != m.data_ptr()
    torch.testing.assert_close(packed, sliced)


def test_onednn_gets_dense_operands_from_sliced_views(monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN multiplies any other strides in its reference kernel, 2,000x slower (cpu_matmul.dense)."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    onednn = torch.ops.mkldnn._linear_pointwise

    def spy(a, b, *rest):
        seen.append((a, b))
        return onednn(a, b, *rest)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", spy)
    x = torch.randn(200, 1024)[:, :768].requires_grad_()  # views of wider matrices
    w = torch.randn(512, 1024)[:, 256:].requires_grad_()
    y = linear(x, w)
    y.backward(torch.ones_like(y))
    assert len(seen) == 3  # forward, input gradient, weight gradient
    for a, b in seen:
        for m in (a, b):
            assert m.is_contiguous() or m.t().is_contiguous(), m.stride()
    torch.testing.assert_close(y, F.linear(x.detach(), w.detach()), rtol=1e-5, atol=1e-4)


def test_inference_and_small_products_keep_the_library_path() -> None:
    layer = Linear(768, 512)
    x = torch.randn(200, 768)
    with torch.no_grad():
        y = layer(x)
    assert y.grad_fn is None
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias))
    assert not _takes_onednn(Linear(4, 3)(torch.randn(2, 4)))  # 24 multiply-adds
    assert not _takes_onednn(linear(torch.randn(300, 300, dtype=torch.float64, requires_grad=True),
                                    torch.randn(200, 300, dtype=torch.float64)))  # fmt: skip
    assert _takes_onednn(layer(x))  # the weight wants a gradient: training


def test_a_training_step_runs_its_products_through_onednn_and_matches_the_library(monkeypatch) -> None:
    """One VAEVAE loss on the paper's code's MNIST-Split networks: the same gradients with oneDNN switched off
    (``torch.backends.mkldnn.enabled = False`` sends every product to the library)."""
    torch.manual_seed(0)
    model = build_model("vaevae", "mnist-split", paper_code_nets=True)
    images = torch.rand(60, 1, 28, 28)
    batch = MultimodalBatch(
        paired={"top": images[:20, :, :14], "bottom": images[:20, :, 14:]},
        unpaired={"top": images[20:40, :, :14], "bottom": images[40:, :, 14:]},
    )
    params = [p for p in model.parameters() if p.requires_grad]

    def gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(1)  # the same reparametrisation noise
        total = model.loss(batch).total
        return total, torch.autograd.grad(total, params)

    total, grads = gradients()
    assert _takes_onednn(total)
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    total_lib, grads_lib = gradients()
    assert not _takes_onednn(total_lib)
    torch.testing.assert_close(total, total_lib, rtol=1e-4, atol=1e-3)
    for got, want in zip(grads, grads_lib, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)
