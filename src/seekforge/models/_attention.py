"""Attention implementations for a scratch transformer encoder, behind ``model.attention``.

``sdpa`` (the default) is PyTorch's ``nn.TransformerEncoderLayer``, whose multi-head attention calls
``scaled_dot_product_attention``: exact, memory-efficient kernels where it has them. ``eager`` computes
the same attention in plain operations (the ``[tokens, tokens]`` weights materialised); ``lsh`` is
bucketed attention after Reformer (Kitaev et al. 2020): queries and keys are hashed by random rotations
into ``buckets`` (angular LSH), sorted by bucket, cut into chunks of ``chunk`` tokens, and each query chunk
attends to the key chunk at its place and the one before; ``hashes`` rounds are combined by their
log-sum-exp. Memory grows with ``tokens x chunk`` instead of ``tokens x tokens``; the result approximates
full attention (exactly full attention when one chunk covers the sequence).

Every implementation reads the weights of the layer's ``nn.MultiheadAttention`` (``in_proj_weight``,
``out_proj``): a package's weights load into any of them.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from seekforge.core.config import BaseConfig


class LSHConfig(BaseConfig):
    """Bucketed attention: ``buckets`` (even) per hash round, ``hashes`` rounds, chunks of ``chunk`` tokens
    (a sequence is padded to a multiple of it); ``seed`` draws the rotations."""

    type: Literal["lsh"] = "lsh"
    buckets: Annotated[int, Field(ge=2, le=4096, multiple_of=2)] = 32
    hashes: Annotated[int, Field(ge=1, le=16)] = 2
    chunk: Annotated[int, Field(ge=1, le=8192)] = 64
    seed: Annotated[int, Field(ge=0)] = 0


AttentionChoice = Literal["sdpa", "eager"] | LSHConfig


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (the same weights) whose self-attention is ``eager`` or ``lsh``."""

    def __init__(self, *args: object, attention: Literal["eager"] | LSHConfig, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.attention = attention
        if isinstance(attention, LSHConfig):
            heads = self.self_attn.num_heads
            width = self.self_attn.embed_dim // heads
            generator = torch.Generator().manual_seed(attention.seed)
            rotations = torch.randn(attention.hashes, heads, width, attention.buckets // 2, generator=generator)
            self.register_buffer("rotations", rotations, persistent=False)

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:  # fmt: skip
        # PyTorch's fused fast path would compute its own attention: always the Python path here.
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                  is_causal: bool = False) -> Tensor:  # fmt: skip
        if attn_mask is not None:
            raise ValueError("eager and lsh attention take a padding mask and is_causal, not an attention mask")
        mha = self.self_attn
        rows, tokens, width = x.shape
        heads = mha.num_heads
        q, k, v = nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(rows, tokens, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        padding = _padding(key_padding_mask, rows, tokens, x.device)
        dropout = mha.dropout if self.training else 0.0  # on the attention weights, as nn.MultiheadAttention
        if isinstance(self.attention, LSHConfig):
            out = lsh_attention(q, k, v, padding, self.rotations, self.attention.chunk, causal=is_causal,
                                dropout=dropout)  # fmt: skip
        else:
            out = eager_attention(q, k, v, padding, causal=is_causal, dropout=dropout)
        out = out.transpose(1, 2).reshape(rows, tokens, width)
        return self.dropout1(mha.out_proj(out))


def _padding(mask: Tensor | None, rows: int, tokens: int, device: torch.device) -> Tensor:
    """A boolean ``[rows, tokens]``, True at padding, from a boolean or additive (-inf) key padding mask."""
    if mask is None:
        return torch.zeros(rows, tokens, dtype=torch.bool, device=device)
    return mask if mask.dtype == torch.bool else torch.isneginf(mask)


def eager_attention(q: Tensor, k: Tensor, v: Tensor, padding: Tensor, *, causal: bool = False,
                    dropout: float = 0.0) -> Tensor:  # fmt: skip
    """softmax(q k^T / sqrt(d)) v over ``[rows, heads, tokens, width]``, padding keys (and, ``causal``, later
    ones) left out; a row whose keys are all left out gets zeros. ``dropout`` on the weights."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    hidden = padding[:, None, None, :]
    if causal:
        tokens = q.shape[-2]
        hidden = hidden | torch.ones(tokens, tokens, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(hidden, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return nn.functional.dropout(weights, dropout) @ v if dropout else weights @ v


def lsh_attention(q: Tensor, k: Tensor, v: Tensor, padding: Tensor, rotations: Tensor, chunk: int, *,
                  causal: bool = False, dropout: float = 0.0) -> Tensor:  # fmt: skip
    """Bucketed attention over ``[rows, heads, tokens, width]`` (see the module's docstring); ``rotations``
    is ``[hashes, heads, width, buckets / 2]``. Queries and keys are each sorted by bucket with the padding
    last, so that a row's real queries line up with its real keys chunk by chunk.

    Several rounds are combined by the share of the attention mass each found (Reformer's log-sum-exp
    weighting, without its correction for a key found in more than one round: such a key weighs more)."""
    rows, heads, tokens, width = q.shape
    extra = (-tokens) % chunk  # padded to whole chunks (no branch: an exported graph takes any length)
    size = tokens + extra
    q, k, v = (nn.functional.pad(t, (0, 0, 0, extra)) for t in (q, k, v))
    padding = nn.functional.pad(padding, (0, extra), value=True)  # the added keys are padding
    positions = torch.arange(size, device=q.device)
    outputs, totals = [], []
    for rotation in rotations:  # one hash round at a time: [heads, width, buckets / 2]
        query_order = _bucket_order(q, rotation, padding=padding)
        key_order = _bucket_order(k, rotation, padding=padding)
        sq, sk, sv = (_gather(t, o) for t, o in ((q, query_order), (k, key_order), (v, key_order)))
        q_pos, k_pos = positions[query_order], positions[key_order]  # [rows, heads, size]
        k_pad = torch.gather(padding[:, None, :].expand(rows, heads, size), 2, key_order)
        n = size // chunk
        cq = sq.reshape(rows, heads, n, chunk, width)
        ck, cv = (_with_previous(t.reshape(rows, heads, n, chunk, -1)) for t in (sk, sv))
        ck_pos = _with_previous(k_pos.reshape(rows, heads, n, chunk, 1)).squeeze(-1)
        ck_pad = _with_previous(k_pad.reshape(rows, heads, n, chunk, 1)).squeeze(-1)
        scores = cq @ ck.transpose(-2, -1) / math.sqrt(width)  # [rows, heads, n, chunk, 2 chunk]
        hidden = ck_pad[..., None, :] | _repeated(n, chunk, q.device)
        if causal:
            hidden = hidden | (ck_pos[..., None, :] > q_pos.reshape(rows, heads, n, chunk)[..., None])
        scores = scores.masked_fill(hidden, float("-inf"))
        total = torch.logsumexp(scores, dim=-1, keepdim=True)  # [.., chunk, 1]
        weights = torch.exp(scores - total).nan_to_num(0.0)
        weights = nn.functional.dropout(weights, dropout) if dropout else weights
        out = (weights @ cv).reshape(rows, heads, size, width)
        back = torch.argsort(query_order, dim=-1)
        outputs.append(_gather(out, back))
        totals.append(torch.gather(total.reshape(rows, heads, size), 2, back))
    if len(outputs) == 1:
        out = outputs[0]
    else:  # each round weighed by the share of the attention mass it found
        share = torch.softmax(torch.stack(totals), dim=0).nan_to_num(0.0)
        out = (torch.stack(outputs) * share[..., None]).sum(0)
    return out[:, :, :tokens]


def _bucket_order(x: Tensor, rotation: Tensor, padding: Tensor | None) -> Tensor:
    """Token positions sorted by angular-LSH bucket (then position); padding keys go last."""
    rotated = torch.einsum("bhtd,hdr->bhtr", nn.functional.normalize(x, dim=-1), rotation)
    buckets = torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)  # [rows, heads, tokens]
    tokens = x.shape[-2]
    if padding is not None:
        buckets = buckets.masked_fill(padding[:, None, :], rotated.shape[-1] * 2)
    keys = buckets * tokens + torch.arange(tokens, device=x.device)
    return torch.argsort(keys, dim=-1)


def _gather(x: Tensor, order: Tensor) -> Tensor:
    return torch.gather(x, 2, order[..., None].expand(*order.shape, x.shape[-1]))


def _with_previous(chunks: Tensor) -> Tensor:
    """Each chunk beside the one before it (the first beside the last, hidden by :func:`_repeated`):
    ``[.., n, chunk, d]`` -> ``[.., n, 2 chunk, d]``."""
    return torch.cat([chunks, chunks.roll(1, dims=-3)], dim=-2)


def _repeated(n: int, chunk: int, device: torch.device) -> Tensor:
    """Hides what a chunk would see twice or should not see: with one chunk, the copy of itself; else the
    first chunk's look back to the last. ``[n, chunk, 2 chunk]``, True where hidden."""
    hidden = torch.zeros(n, chunk, 2 * chunk, dtype=torch.bool, device=device)
    hidden[0, :, chunk:] = True
    return hidden
