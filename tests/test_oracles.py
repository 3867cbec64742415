"""Oracle classifiers: the shipped MMVAE LeNets and the hand-written ResNet-18 of the MNIST-Split oracle."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from training.oracles import (
    MNIST_ORACLE_FILE,
    LeNetOracle,
    ResNet18,
    accuracy,
    fit_classifier,
    load_mnist_oracle,
    load_mnist_svhn_oracle,
    predict,
    train_mnist_oracle,
)


@pytest.fixture
def one_thread():
    """Small convolutions on a shared 2-core machine run far faster on one thread than on two contending ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.full_data
def test_mnist_lenet_oracle_reaches_the_stated_accuracy(shared_data, mnist):
    oracle = load_mnist_svhn_oracle("mnist", shared_data / "mnist_svhn")
    assert not oracle.training
    # README: 99.23% on the MNIST test set with x/255 inputs
    assert accuracy(oracle, mnist.x_test, mnist.y_test) == pytest.approx(0.9923, abs=1e-6)
    # flat inputs (as an MLP decoder gives them) are the same images
    assert torch.equal(predict(oracle, mnist.x_test[:50].reshape(50, -1)), predict(oracle, mnist.x_test[:50]))


@pytest.mark.full_data
def test_svhn_lenet_oracle_loads_and_gives_log_probabilities(shared_data):
    oracle = load_mnist_svhn_oracle("svhn", shared_data / "mnist_svhn")
    assert oracle.fc1.in_features == 500 and oracle.conv1.in_channels == 3
    out = oracle(torch.rand(4, 3, 32, 32))
    assert out.shape == (4, 10)
    assert torch.allclose(out.exp().sum(-1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError):
        load_mnist_svhn_oracle("cub", shared_data / "mnist_svhn")


def test_lenet_flatten_sizes():
    assert LeNetOracle(1, 28).flat == 320 and LeNetOracle(3, 32).flat == 500


def test_resnet18_is_torchvision_resnet18_with_one_channel():
    net = ResNet18()
    state = net.state_dict()
    # torchvision resnet18: 11,689,512 parameters with 3 input channels and 1000 classes; one input channel removes
    # 2*64*7*7 conv1 weights, 10 classes remove (512+1)*990 fc parameters
    assert sum(p.numel() for p in net.parameters()) == 11_689_512 - 2 * 64 * 49 - 513 * 990
    # 1 conv1 + 5 bn1 + 8 blocks x 12 + 3 downsamples x 6 + 2 fc
    assert len(state) == 122
    assert state["conv1.weight"].shape == (64, 1, 7, 7)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert "layer1.0.downsample.0.weight" not in state
    assert state["fc.weight"].shape == (10, 512)


def test_resnet18_forward_and_width():
    net = ResNet18(width=8).eval()
    out = net(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert torch.allclose(out.exp().sum(-1), torch.ones(5), atol=1e-5)
    assert net.fc.in_features == 64
    assert torch.equal(net(torch.ones(2, 784)), net(torch.ones(2, 1, 28, 28)))


def test_short_training_lowers_the_loss(mnist, one_thread):
    torch.manual_seed(0)
    x, y = mnist.x_train[:300], mnist.y_train[:300]
    net = ResNet18(width=8)

    def loss() -> float:  # batch-norm on batch statistics: a few steps leave the running averages behind
        net.train()
        with torch.no_grad():
            return F.nll_loss(net(x), y).item()

    before = loss()
    losses = fit_classifier(net, x, y, epochs=1, batch_size=30, lr=1e-3)
    assert len(losses) == 1
    assert loss() < before


def test_train_cache_and_reload(shared_data, mnist, tmp_path, one_thread):
    path = tmp_path / MNIST_ORACLE_FILE
    net, record = train_mnist_oracle(shared_data, path, epochs=1, width=4, batch_size=64, max_train=256)
    assert path.exists()
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved == record
    assert saved["n_train"] == 256 and saved["width"] == 4 and saved["n_test"] == len(mnist.y_test)
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    x = torch.rand(8, 1, 28, 28)
    reloaded = load_mnist_oracle(path)
    assert reloaded.width == 4
    assert torch.equal(reloaded(x), net(x))


def test_the_shipped_mnist_split_oracle_matches_its_card(mnist):
    """The oracle in the package (``msvae oracle --width 16 --epochs 4``): small, and as accurate on the MNIST test
    images here as its record says it is on all 10,000."""
    from training.oracles import SHIPPED_MNIST_ORACLE, oracle_record

    record = oracle_record(SHIPPED_MNIST_ORACLE)
    assert SHIPPED_MNIST_ORACLE.stat().st_size < 4 * 2**20 and record["width"] == 16 and record["n_test"] == 10000
    oracle = load_mnist_oracle(SHIPPED_MNIST_ORACLE)
    assert record["test_accuracy"] > 0.98 and accuracy(oracle, mnist.x_test, mnist.y_test) > 0.97
