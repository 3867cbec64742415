"""CUB image-captions: modalities ``image`` (a 2048-d ResNet-101 feature vector) and ``caption`` (token ids).

Image (Table A.6, MMVAE's ``vae_cub_image_ft``): FC 1024, 512, 256 with ELU, heads FC L; decoder FC 256, 512,
1024 with ELU, FC 2048. Likelihood: Laplace with a fixed scale, ``image_scale``.

Caption (Table A.5, MMVAE's sentence VAE): embedding of the ids, the (max_len x emb) matrix as a 1-channel image;
4x4 conv 32, 64, 128 stride 2 padding 1, then (1,4) conv 256 and 512 with stride (1,2) padding (0,1), each
followed by BatchNorm2d and ReLU (32 x 128 -> 16 x 64 -> 8 x 32 -> 4 x 16 -> 4 x 8 -> 4 x 4); heads two 4x4
convs to L channels. Decoder: 4x4 transposed conv 512 stride 1 (1x1 -> 4x4), (1,4) transposed convs 256 and 128
stride (1,2) padding (0,1), 4x4 transposed convs 64, 32 and 1 stride 2 padding 1 (BatchNorm2d and ReLU after
all but the last, ReLU after the last) -> 1 x max_len x emb, then Linear(emb, vocab) ("Word Emb.^T") per
position -> (batch, max_len, vocab) logits. Categorical likelihood that ignores the padding id.

Deviations and choices:
- Embedding dimension 128 (``emb_dim``), as MMVAE, not the table's 256: the table's own decoder ends at width
  128 before "Word Emb.^T", so 256 would not fit it. Other sizes work when ``emb_dim`` is a multiple of 32 and
  ``max_len`` of 8: the heads' and the first transposed conv's kernel is (max_len/8, emb_dim/32), i.e. the 4x4
  of the tables at the defaults.
- The table's extra "4x4 conv. 512 stride 1x2 pad 0x1" row after the (1,4) convs is left out: MMVAE has no such
  layer and it would not leave a 4x4 map for the 4x4 heads.
- Channels 256 and 512 in the (1,4) layers follow the table; MMVAE (and poe-vaes) keep 128 channels there.
- Padding id: ``pad_id=1`` (MMVAE's vocabulary: <exc>=0, <pad>=1, <eos>=2) is both the embedding's padding_idx
  and the likelihood's ignore_index. MMVAE itself uses padding_idx=0 and ignore_index=0, i.e. it treats
  <exc> as padding and scores the <pad> positions -- we take the vocabulary's real pad id instead.
- MMVAE ties the output layer to the embedding weights; encoder and decoder are built separately here, so
  they are untied. Conv layers followed by BatchNorm have no bias (as MMVAE), nor do the conv heads.
- Image likelihood: Laplace with scale 0.01 and the log-likelihood weighted by 0.002 (``image_scale``,
  ``image_weight``), as both reference implementations of this network (MMVAE ``vae_cub_image_ft`` uses 0.01;
  the paper's code ``cub_inference.GeneratorY`` uses 0.01 and weights by ``y_coef`` = 0.002); without the weight a
  0.01 scale lets the 2048 feature errors dominate the bound.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from models.likelihoods import Categorical, Laplace
from models.networks.cpu_matmul import Linear
from models.networks.layers import ConvGaussianHead, vector_spec
from models.spec import ModalitySpec

IMAGE_DIM = 2048
IMAGE_HIDDEN = (1024, 512, 256)
VOCAB_SIZE = 1590
MAX_LEN = 32
EMB_DIM = 128
PAD_ID = 1
TEXT_CHANNELS = (32, 64, 128, 256, 512)


def image_spec(
    dim: int = IMAGE_DIM, hidden: Sequence[int] = IMAGE_HIDDEN, scale: float = 0.01, weight: float = 0.002
) -> ModalitySpec:
    """Table A.6's ELU MLPs over a ResNet feature vector; the decoder mirrors the encoder's widths."""
    hidden = tuple(hidden)
    note = f"Laplace scale {scale}, log-likelihood weight {weight} (the paper's code: 0.01 and 0.002)"
    spec = vector_spec(dim, hidden, hidden[::-1], Laplace(scale=scale), nn.ELU, notes={"likelihood": note})
    spec.weight = weight
    return spec


def _text_grid(max_len: int, emb_dim: int) -> tuple[int, int]:
    """Size of the final text feature map: (max_len / 8, emb_dim / 32), after checking they divide."""
    if max_len % 8 or emb_dim % 32:
        raise ValueError(
            f"the caption conv nets need max_len divisible by 8 and emb_dim by 32 (three stride-2 layers, then two "
            f"more halving the width); got max_len={max_len}, emb_dim={emb_dim}"
        )
    return max_len // 8, emb_dim // 32


def _bn_relu(ch: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(ch), nn.ReLU()]


def caption_body(vocab_size: int, max_len: int, emb_dim: int, pad_id: int) -> nn.Sequential:
    """(batch, max_len) ids -> (batch, 512 * max_len/8 * emb_dim/32) features."""
    _text_grid(max_len, emb_dim)
    c = TEXT_CHANNELS
    return nn.Sequential(
        nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id),
        nn.Unflatten(1, (1, max_len)),  # (batch, 1, max_len, emb_dim): the sentence as a one-channel image
        nn.Conv2d(1, c[0], 4, 2, 1, bias=False),
        *_bn_relu(c[0]),
        nn.Conv2d(c[0], c[1], 4, 2, 1, bias=False),
        *_bn_relu(c[1]),
        nn.Conv2d(c[1], c[2], 4, 2, 1, bias=False),
        *_bn_relu(c[2]),
        nn.Conv2d(c[2], c[3], (1, 4), (1, 2), (0, 1), bias=False),
        *_bn_relu(c[3]),
        nn.Conv2d(c[3], c[4], (1, 4), (1, 2), (0, 1), bias=False),
        *_bn_relu(c[4]),
        nn.Flatten(),
    )


def caption_decoder(latent_dim: int, vocab_size: int, max_len: int, emb_dim: int) -> nn.Sequential:
    """z -> (batch, max_len, vocab_size) logits."""
    grid = _text_grid(max_len, emb_dim)
    c = TEXT_CHANNELS
    return nn.Sequential(
        nn.Unflatten(1, (latent_dim, 1, 1)),
        nn.ConvTranspose2d(latent_dim, c[4], grid, 1, 0, bias=False),
        *_bn_relu(c[4]),
        nn.ConvTranspose2d(c[4], c[3], (1, 4), (1, 2), (0, 1), bias=False),
        *_bn_relu(c[3]),
        nn.ConvTranspose2d(c[3], c[2], (1, 4), (1, 2), (0, 1), bias=False),
        *_bn_relu(c[2]),
        nn.ConvTranspose2d(c[2], c[1], 4, 2, 1, bias=False),
        *_bn_relu(c[1]),
        nn.ConvTranspose2d(c[1], c[0], 4, 2, 1, bias=False),
        *_bn_relu(c[0]),
        nn.ConvTranspose2d(c[0], 1, 4, 2, 1, bias=False),
        nn.ReLU(),
        nn.Flatten(1, 2),  # (batch, max_len, emb_dim)
        Linear(emb_dim, vocab_size),  # "Word Emb.^T", applied at every position
    )


def caption_spec(
    vocab_size: int = VOCAB_SIZE, max_len: int = MAX_LEN, emb_dim: int = EMB_DIM, pad_id: int = PAD_ID
) -> ModalitySpec:
    """Table A.5's conv text networks over (batch, max_len) token ids."""
    grid = _text_grid(max_len, emb_dim)
    channels = TEXT_CHANNELS[-1]
    return ModalitySpec(
        make_body=lambda: caption_body(vocab_size, max_len, emb_dim, pad_id),
        feature_dim=channels * grid[0] * grid[1],
        make_decoder=lambda latent_dim: caption_decoder(latent_dim, vocab_size, max_len, emb_dim),
        likelihood=Categorical(ignore_index=pad_id),
        shape=(max_len,),
        make_head=lambda _feature_dim, latent_dim: ConvGaussianHead(channels, grid, latent_dim, bias=False),
        dtype="long",
        notes={"pad_id": str(pad_id)},
    )


def modalities(
    *,
    image_dim: int = IMAGE_DIM,
    image_hidden: Sequence[int] = IMAGE_HIDDEN,
    image_scale: float = 0.01,
    image_weight: float = 0.002,
    vocab_size: int = VOCAB_SIZE,
    max_len: int = MAX_LEN,
    emb_dim: int = EMB_DIM,
    pad_id: int = PAD_ID,
) -> dict[str, ModalitySpec]:
    """The two modalities of CUB image-captions, ``image`` then ``caption``."""
    return {
        "image": image_spec(image_dim, image_hidden, image_scale, image_weight),
        "caption": caption_spec(vocab_size, max_len, emb_dim, pad_id),
    }
