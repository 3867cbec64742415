"""MNIST and the MNIST-Split experiments: images cut into horizontal strips, one modality per strip.

Data: ``mnist/mnist.npz`` (``../shared/data/mnist/README.md``): uint8 ``x_train (60000,28,28)``, ``y_train``,
``x_test (10000,28,28)``, ``y_test``, in the original (torchvision) order. Pixels become float32 x/255 in [0, 1]
(torchvision's ``ToTensor``, as in the paper's code; Bernoulli decoders, no binarisation).

Splits (``../shared/data/POE_VAES_PROTOCOL.md``): MNIST-Split = top rows 0-13 / bottom rows 14-27; MNIST-Split-3 =
rows 0-8 / 9-17 / 18-26 with row 27 dropped (a zero row is appended again when reassembling for the oracle). In
general ``n`` strips of ``28 // n`` rows, the remaining bottom rows dropped.

Evaluation (protocol): MNIST test images 0-4999 are the "test" set, 5000-9999 the "valid" set, both fully paired.
The paper's code picks its best epoch by the top-half accuracy on the *test* half and reports that same half; we
pick the best epoch on "valid" and report "test", so the reported numbers are not selected on the data they score.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.semi import SemiSupervisedData, UnpairedRule, make_semi_supervised

HEIGHT = 28


@dataclass
class MNIST:
    """Images ``(N, 1, 28, 28)`` float32 in [0, 1] and labels ``(N,)`` int64, train and test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass
class EvalSet:
    """A fully paired evaluation set: ``data[modality]`` rows aligned with ``labels`` (None where there are none)."""

    data: dict[str, torch.Tensor]
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return next(iter(self.data.values())).shape[0]


@dataclass
class EvalSets:
    """``valid`` chooses the best epoch, ``test`` is reported."""

    valid: EvalSet
    test: EvalSet


def mnist_file(path: str | Path) -> Path:
    """The ``mnist.npz`` file: ``path`` itself, or ``path/mnist.npz``, or ``path/mnist/mnist.npz``."""
    path = Path(path)
    for candidate in (path, path / "mnist.npz", path / "mnist" / "mnist.npz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no mnist.npz at {path} (see download_mnist)")


def to_unit_float(x: np.ndarray) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` -> float32 ``(N, 1, H, W)`` = x / 255, as torchvision's ToTensor."""
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)


def load_mnist(path: str | Path) -> MNIST:
    """Load MNIST from ``mnist.npz`` (a file or a folder holding it, see :func:`mnist_file`)."""
    with np.load(mnist_file(path)) as d:
        return MNIST(
            to_unit_float(d["x_train"]),
            torch.from_numpy(d["y_train"].astype(np.int64)),
            to_unit_float(d["x_test"]),
            torch.from_numpy(d["y_test"].astype(np.int64)),
        )


def part_names(n: int) -> list[str]:
    """Modality names of an n-strip split: top, bottom (2); top, middle, bottom (3); part0 .. part{n-1} otherwise."""
    if n == 2:
        return ["top", "bottom"]
    if n == 3:
        return ["top", "middle", "bottom"]
    return [f"part{i}" for i in range(n)]


def split_rows(x: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """Cut images ``(N, C, 28, W)`` into ``n`` strips of ``28 // n`` rows, top first; leftover bottom rows dropped."""
    if not 1 <= n <= x.shape[-2]:
        raise ValueError(f"cannot split {x.shape[-2]} rows into {n} strips")
    h = x.shape[-2] // n
    return {name: x[..., i * h : (i + 1) * h, :] for i, name in enumerate(part_names(n))}


def split_halves(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """MNIST-Split: ``top`` = rows 0-13, ``bottom`` = rows 14-27, each ``(N, 1, 14, 28)``."""
    return split_rows(x, 2)


def split_three(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """MNIST-Split-3: rows 0-8, 9-17, 18-26 (``top``, ``middle``, ``bottom``, each ``(N, 1, 9, 28)``), row 27 gone."""
    return split_rows(x, 3)


def reassemble(parts: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], height: int = HEIGHT) -> torch.Tensor:
    """Stack strips (top first; a mapping in its order) into ``(N, C, height, W)`` images, zero rows appended below.

    Strips may come flat (``(N, h*W)``, as some decoders give them): they are reshaped to ``(N, 1, h, 28)``.
    """
    strips = list(parts.values()) if isinstance(parts, Mapping) else list(parts)
    strips = [s if s.dim() == 4 else s.reshape(s.shape[0], 1, -1, 28) for s in strips]
    img = torch.cat(strips, dim=-2)
    missing = height - img.shape[-2]
    if missing < 0:
        raise ValueError(f"strips have {img.shape[-2]} rows, more than {height}")
    if missing:
        img = torch.cat([img, img.new_zeros(*img.shape[:-2], missing, img.shape[-1])], dim=-2)
    return img


def evaluation_sets(x: torch.Tensor, y: torch.Tensor, n_parts: int) -> EvalSets:
    """The protocol's evaluation sets from MNIST test, split into strips: the first half of the rows is the test set,
    the second half the validation set (rows 0-4999 and 5000-9999 of the 10,000 MNIST test images)."""
    half = x.shape[0] // 2
    return EvalSets(
        valid=EvalSet(split_rows(x[half:], n_parts), y[half:]),
        test=EvalSet(split_rows(x[:half], n_parts), y[:half]),
    )


def load_mnist_split(
    data_dir: str | Path, supervision: float, seed: int, n_parts: int = 2, unpaired: UnpairedRule = "all"
) -> tuple[SemiSupervisedData, EvalSets]:
    """MNIST-Split (``n_parts=2``) or MNIST-Split-3 (``n_parts=3``): the 60k training images cut into strips and
    split into paired / unpaired parts at the supervision level (:func:`training.data.semi.split_supervision`),
    and the evaluation sets of :func:`evaluation_sets`."""
    d = load_mnist(data_dir)
    train = make_semi_supervised(split_rows(d.x_train, n_parts), supervision, seed, unpaired)
    return train, evaluation_sets(d.x_test, d.y_test, n_parts)


# --- download (for users; tests read the local copy) ----------------------------------------------------------------

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of yann.lecun.com/exdb/mnist
MNIST_IDX_SHA256 = {  # of the uncompressed idx files (../shared/data/mnist/README.md)
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: str | Path, digest: str, algorithm: str = "sha256", gunzip: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` (gunzipped when asked) and check its digest; a wrong file is removed, not kept."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp, urllib.request.urlopen(url) as response:
        shutil.copyfileobj(gzip.GzipFile(fileobj=response) if gunzip else response, tmp)
    got = file_digest(tmp.name, algorithm)
    if got != digest:
        Path(tmp.name).unlink()
        raise ValueError(f"{url}: {algorithm} {got} differs from the expected {digest}")
    return Path(tmp.name).replace(dest)


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (LeCun's format: two zero bytes, type 0x08 = ubyte, ndim, big-endian int32 dims, data) as uint8."""
    data = Path(path).read_bytes()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {array.size} bytes of data for dims {dims}")
    return array.reshape(dims)


def download_mnist(dest_dir: str | Path) -> Path:
    """Download the four MNIST idx files, check their sha256 and write ``dest_dir/mnist.npz`` in our format."""
    dest_dir = Path(dest_dir)
    arrays = {}
    for name, digest in MNIST_IDX_SHA256.items():
        path = dest_dir / name
        if not (path.exists() and file_digest(path) == digest):
            download(MNIST_URL + name + ".gz", path, digest, gunzip=True)
        arrays[name] = read_idx(path)
    out = dest_dir / "mnist.npz"
    np.savez_compressed(
        out,
        x_train=arrays["train-images-idx3-ubyte"],
        y_train=arrays["train-labels-idx1-ubyte"],
        x_test=arrays["t10k-images-idx3-ubyte"],
        y_test=arrays["t10k-labels-idx1-ubyte"],
    )
    return out
