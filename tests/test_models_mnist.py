"""Every model of the registry learns on real MNIST halves with the paper's MNIST-Split networks."""

import numpy as np
import pytest
import torch

from models import MODEL_NAMES, MultimodalBatch, build_model


@pytest.fixture(scope="module")
def halves(shared_data):
    images = np.load(shared_data / "mnist" / "mnist.npz")["x_train"][:512]
    x = torch.tensor(images, dtype=torch.float32).div(255).unsqueeze(1)
    return x[:, :, :14], x[:, :, 14:]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_loss_falls_on_512_real_mnist_half_images(name, halves):
    top, bottom = halves
    torch.manual_seed(0)
    model = build_model(name, "mnist-split", k=4) if name == "mmvae" else build_model(name, "mnist-split")
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        paired, only_top, only_bottom = torch.randint(0, 512, (3, 8))
        batch = MultimodalBatch(
            paired={"top": top[paired], "bottom": bottom[paired]},
            unpaired={"top": top[only_top], "bottom": bottom[only_bottom]},
        )
        out = model.loss(batch)
        optimiser.zero_grad()
        out.total.backward()
        optimiser.step()
        losses.append(out.total.item())
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert np.isfinite(losses).all()
    assert last < 0.6 * first, f"{name}: loss {first:.1f} -> {last:.1f}"


def test_svae_default_does_not_collapse_to_the_prior(halves):
    """With 10% paired halves, SVAE's posteriors must carry information (KL > 0). With the N(0, I) expert in every
    product, this run collapsed to the prior (all KL terms 0.0 by step 100), hence prior_expert=False by default."""
    top, bottom = halves
    torch.manual_seed(0)
    model = build_model("svae", "mnist-split")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(60):
        paired = torch.randint(0, 51, (16,))
        only_top, only_bottom = torch.randint(51, 512, (2, 16))
        out = model.loss(
            MultimodalBatch(
                paired={"top": top[paired], "bottom": bottom[paired]},
                unpaired={"top": top[only_top], "bottom": bottom[only_bottom]},
            )
        )
        optimiser.zero_grad()
        out.total.backward()
        optimiser.step()
    assert out.terms["unpaired_top/kl"].item() > 0.1 and out.terms["unpaired_bottom/kl"].item() > 0.1, out.terms
