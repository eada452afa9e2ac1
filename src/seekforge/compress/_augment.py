"""Altered copies of the training texts for distillation, which the teacher then labels.

A student trained on a few thousand labelled rows overfits them; the teacher can label as many rows as
it is shown. Each copy of a training text is tokenised already; some of its tokens become the mask
token, some become one of their nearest neighbours in the teacher's token embedding table, and some
copies keep only a window of the text (Tang et al., 2019, "Distilling task-specific knowledge from
BERT into simple neural networks"; TinyBERT's augmentation swaps words for embedding neighbours too).
The teacher's outputs on the copies are the student's targets there.
"""

from __future__ import annotations

import torch

from seekforge.compress.config import AugmentConfig

#: neighbour tables are computed this many tokens at a time
_CHUNK = 1024


def neighbours(table: torch.Tensor, tokens: torch.Tensor, k: int) -> torch.Tensor:
    """For each id in ``tokens``, the ``k`` other ids of ``tokens`` whose rows of ``table`` are nearest by
    cosine similarity: ``[len(tokens), k]``; fewer candidates than ``k`` repeat the nearest ones."""
    vectors = torch.nn.functional.normalize(table[tokens].float(), dim=1)
    k = min(k, len(tokens) - 1)
    if k < 1:
        return tokens[:, None].clone()
    out = []
    for start in range(0, len(tokens), _CHUNK):
        similarity = vectors[start : start + _CHUNK] @ vectors.T
        rows = torch.arange(similarity.shape[0])
        similarity[rows, rows + start] = -2.0  # a token is not its own neighbour
        out.append(tokens[similarity.topk(k, dim=1).indices])
    return torch.cat(out)


def augment_tokens(
    ids: torch.Tensor,
    mask: torch.Tensor,
    config: AugmentConfig,
    *,
    special_ids: set[int],
    mask_id: int | None,
    pad_id: int,
    table: torch.Tensor | None,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``config.copies`` altered copies of every row of token ``ids`` and attention ``mask``.

    Special tokens (the first and last of a BERT row) and padding are never altered. Each other token
    becomes ``mask_id`` with probability ``config.mask`` and one of its ``config.neighbours`` nearest
    tokens in ``table`` (the teacher's token embeddings, among the tokens these rows use) with
    probability ``config.replace``; with probability ``config.window`` a copy then keeps only a random
    run of between half and all of its tokens. Without a mask token or a table, that alteration is
    skipped. Seeded: the same rows and seed give the same copies.

    Returns:
        The copies' ids and attention mask, and for each copy the row it was made from.
    """
    generator = torch.Generator().manual_seed(seed)
    source = torch.arange(len(ids)).repeat(config.copies)
    out, attended = ids[source].clone(), mask[source].clone()
    specials = torch.tensor(sorted(special_ids), dtype=ids.dtype)
    body = (attended == 1) & ~torch.isin(out, specials)
    draw = torch.rand(out.shape, generator=generator)
    if mask_id is not None:
        out[body & (draw < config.mask)] = mask_id
    if table is not None and config.replace > 0:
        used = torch.unique(ids[(mask == 1) & ~torch.isin(ids, specials)])
        lookup = torch.full((int(max(used.max(), out.max())) + 1, config.neighbours), -1, dtype=out.dtype)
        lookup[used] = neighbours(table, used, config.neighbours).to(out.dtype)
        swap = body & (draw >= config.mask) & (draw < config.mask + config.replace) & (out < len(lookup))
        choice = torch.randint(config.neighbours, out.shape, generator=generator)
        picked = lookup[out[swap], choice[swap]]
        out[swap] = torch.where(picked >= 0, picked, out[swap])
    windowed = torch.rand(len(out), generator=generator) < config.window
    sizes, starts = torch.rand(len(out), generator=generator), torch.rand(len(out), generator=generator)
    for row in torch.nonzero(windowed).flatten().tolist():
        kept = torch.nonzero(body[row]).flatten()
        if len(kept) < 2:
            continue
        first, last, end = int(kept[0]), int(kept[-1]), int(attended[row].sum())
        length = last - first + 1
        size = min(length, (length + 1) // 2 + int(sizes[row] * (length // 2 + 1)))
        start = first + min(length - size, int(starts[row] * (length - size + 1)))
        tokens = torch.cat([out[row, :first], out[row, start : start + size], out[row, last + 1 : end]])
        out[row], attended[row] = pad_id, 0
        out[row, : len(tokens)], attended[row, : len(tokens)] = tokens, 1
    return out, attended, source
