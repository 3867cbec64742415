"""Oracle digit classifiers that score generated images (coherence and synergy metrics).

- :class:`LeNetOracle`: the MMVAE oracles of MNIST-SVHN (``../shared/data/mnist_svhn/README.md``), the "PyTorch MNIST
  example" CNN, inputs in [0, 1] without normalisation. :func:`load_mnist_svhn_oracle` loads the shipped weights.
- :class:`ResNet18`: the MNIST-Split oracle of the paper's code (torchvision's ResNet-18 with a one-channel conv1),
  written here by hand with torchvision's parameter names, so its ``mnist_cnn.pt`` would load as it is. That file
  is not obtainable; :func:`train_mnist_oracle` retrains it (``msvae oracle``). A small one ships with the package
  (:data:`SHIPPED_MNIST_ORACLE`, card in ``training/weights/README.md``), so a quick run never trains one first.

Every oracle returns log-probabilities ``(N, 10)``; :func:`predict` gives the argmax class of many inputs in batches.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.data.mnist import load_mnist
from training.trainer import adam


class LeNetOracle(nn.Module):
    """conv(5) -> max-pool 2 -> ReLU, conv(5) -> Dropout2d -> max-pool 2 -> ReLU, FC 50 -> ReLU -> dropout, FC 10.

    ``in_channels=1, size=28`` is the MNIST oracle (flatten 20x4x4 = 320), ``in_channels=3, size=32`` the SVHN one
    (flatten 20x5x5 = 500). Inputs are reshaped to ``(N, C, size, size)``, so flat decoder outputs work as well.
    """

    def __init__(self, in_channels: int = 1, size: int = 28) -> None:
        super().__init__()
        self.in_channels, self.size = in_channels, size
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        side = ((size - 4) // 2 - 4) // 2
        self.flat = 20 * side * side
        self.fc1 = nn.Linear(self.flat, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.in_channels, self.size, self.size)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.reshape(-1, self.flat)))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=-1)


MNIST_SVHN_ORACLE_FILES = {"mnist": "mnist_model_MMVAE.pt", "svhn": "svhn_model_MMVAE.pt"}


def load_mnist_svhn_oracle(modality: str, folder: str | Path) -> LeNetOracle:
    """The shipped MMVAE oracle for ``modality`` ("mnist" or "svhn") from ``folder`` (``.../mnist_svhn``), in eval mode.

    The files are legacy pickles of CUDA tensors: loaded with ``map_location="cpu", weights_only=True``.
    """
    shape = {"mnist": (1, 28), "svhn": (3, 32)}
    if modality not in shape:
        raise ValueError(f"modality must be 'mnist' or 'svhn', got {modality!r}")
    net = LeNetOracle(*shape[modality])
    state = torch.load(Path(folder) / MNIST_SVHN_ORACLE_FILES[modality], map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN when the shape changes) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]) for 1x28x28 digits: conv1 = Conv2d(1, w, 7, stride 2, pad 3, no bias), then
    torchvision's layout (BN, ReLU, 3x3/2 max-pool, four stages of w, 2w, 4w, 8w channels, global average pool, FC).

    ``width=64`` is the paper's network (parameter names and shapes of torchvision's ``resnet18``); a smaller width
    keeps the depth and layout with fewer channels, for CPU training. ``forward`` returns log-probabilities.
    """

    def __init__(self, num_classes: int = 10, width: int = 64, in_channels: int = 1) -> None:
        super().__init__()
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [width, 2 * width, 4 * width, 8 * width]
        stages, in_planes = [], width
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.conv1.in_channels, 28, 28)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.log_softmax(self.fc(torch.flatten(self.avgpool(x), 1)), dim=-1)


@torch.no_grad()
def predict(oracle: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Argmax class of ``oracle`` for every row of ``x``, in eval mode, batch by batch (on the oracle's device)."""
    oracle.eval()
    device = next(oracle.parameters()).device
    out = [oracle(x[i : i + batch_size].to(device)).argmax(-1).cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def accuracy(oracle: nn.Module, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of rows of ``x`` that ``oracle`` classifies as ``labels``."""
    return (predict(oracle, x, batch_size) == labels.cpu()).float().mean().item()


def fit_classifier(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log_every: int = 0,
) -> list[float]:
    """Train a log-probability classifier with Adam on shuffled mini-batches; returns the mean loss of each epoch.

    The loss is the negative log-likelihood of the net's log-softmax output. The paper's oracle script applied
    ``nll_loss`` to the raw network outputs (no log-softmax), which is not a likelihood; we don't repeat that.
    """
    net.to(device).train()
    opt = adam(net.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        total, count = 0.0, 0
        for step, i in enumerate(range(0, x.shape[0], batch_size)):
            idx = perm[i : i + batch_size]
            loss = F.nll_loss(net(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
            if log_every and step % log_every == 0:
                print(f"epoch {epoch + 1} step {step}: loss {loss.item():.4f}", flush=True)
        losses.append(total / count)
    return losses


MNIST_ORACLE_FILE = "mnist_resnet18.pt"
# width 16, 4 epochs, written by `msvae oracle --width 16 --epochs 4` (its .json record beside it)
SHIPPED_MNIST_ORACLE = Path(__file__).resolve().parent / "weights" / MNIST_ORACLE_FILE


def train_mnist_oracle(
    mnist: str | Path,
    out_path: str | Path,
    epochs: int = 10,
    width: int = 64,
    batch_size: int = 64,
    lr: float = 2e-4,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log_every: int = 0,
    max_train: int | None = None,
) -> tuple[ResNet18, dict]:
    """Train the MNIST-Split oracle on the 60k MNIST training images (x/255) and save it.

    The paper's recipe is ``epochs=10, width=64`` (Adam lr 2e-4, batch 64). Writes the state_dict to ``out_path`` and
    ``out_path`` with suffix ``.json`` holding the settings, the per-epoch losses, the MNIST test accuracy and the
    training time. ``max_train`` keeps only the first images (quick checks). Returns the network (eval mode) and
    that record.
    """
    torch.manual_seed(seed)
    d = load_mnist(mnist)
    x, y = d.x_train[:max_train], d.y_train[:max_train]
    net = ResNet18(width=width)
    start = time.time()
    losses = fit_classifier(net, x, y, epochs, batch_size, lr, seed, device, log_every)
    seconds = time.time() - start
    net.eval()
    record = {
        "architecture": "ResNet-18 (BasicBlock [2,2,2,2]), conv1 1->width 7x7/2",
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "n_train": int(y.shape[0]),
        "train_loss_per_epoch": losses,
        "test_accuracy": accuracy(net, d.x_test, d.y_test),
        "n_test": int(d.y_test.shape[0]),
        "train_seconds": round(seconds, 1),
        "device": str(device),
        "torch": torch.__version__,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out_path)
    out_path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return net, record


def load_mnist_oracle(path: str | Path, device: str | torch.device = "cpu") -> ResNet18:
    """A saved MNIST-Split oracle (ours or the paper's ``mnist_cnn.pt`` state_dict); width read from the weights."""
    state = torch.load(path, map_location=device, weights_only=True)
    net = ResNet18(width=state["conv1.weight"].shape[0])
    net.load_state_dict(state)
    return net.to(device).eval()


def oracle_record(path: str | Path) -> dict | None:
    """The JSON record written beside a trained oracle, or None."""
    p = Path(path).with_suffix(".json")
    return json.loads(p.read_text()) if p.exists() else None
