"""Altered copies of tokenised texts for distillation."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from seekforge.compress._augment import augment_tokens, neighbours
from seekforge.compress.config import AugmentConfig

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = {PAD, UNK, CLS, SEP, MASK}


def rows() -> tuple[torch.Tensor, torch.Tensor]:
    """Three BERT-style rows over ids 10..29, padded to 12."""
    ids = torch.full((3, 12), PAD)
    mask = torch.zeros_like(ids)
    for row, length in enumerate((10, 6, 12)):
        ids[row, :length] = torch.tensor([CLS, *range(10 + row, 10 + row + length - 2), SEP])
        mask[row, :length] = 1
    return ids, mask


def augment(config: AugmentConfig, *, seed: int = 0, table: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    ids, mask = rows()
    return augment_tokens(ids, mask, config, special_ids=SPECIAL, mask_id=MASK, pad_id=PAD, table=table, seed=seed)


def test_neighbours_are_the_nearest_other_tokens_by_cosine() -> None:
    table = torch.zeros(8, 2)
    table[3], table[4], table[5], table[6] = (
        torch.tensor([1.0, 0.0]),
        torch.tensor([2.0, 0.1]),
        torch.tensor([0.0, 1.0]),
        torch.tensor([0.1, 3.0]),
    )
    near = neighbours(table, torch.tensor([3, 4, 5, 6]), k=1)
    assert near.flatten().tolist() == [4, 3, 6, 5]
    assert neighbours(table, torch.tensor([3]), k=4).tolist() == [[3]]  # no other token: itself


def test_copies_keep_special_tokens_padding_and_their_source_row() -> None:
    ids, mask = rows()
    out, attended, source = augment(AugmentConfig(copies=4, mask=0.3, replace=0.0, window=0.5))
    assert out.shape == (12, 12) and source.tolist() == [0, 1, 2] * 4
    for row in range(len(out)):
        length = int(attended[row].sum())
        assert attended[row, :length].all() and not attended[row, length:].any()  # still padded on the right
        assert out[row, 0] == CLS and out[row, length - 1] == SEP and (out[row, length:] == PAD).all()
        body = out[row, 1 : length - 1]
        original = ids[source[row], 1 : int(mask[source[row]].sum()) - 1]
        assert len(original) // 2 <= len(body) <= len(original)  # a window keeps half to all of the text
        kept = body[body != MASK]
        assert torch.isin(kept, original).all()  # masking and windows alone bring no new token
    assert (out == MASK).any() and (attended.sum(dim=1) < mask[source].sum(dim=1)).any()


def test_replacements_are_neighbours_in_the_table() -> None:
    table = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    out, attended, source = augment(
        AugmentConfig(copies=5, mask=0.0, replace=1.0, window=0.0, neighbours=2), table=table
    )
    ids, _ = rows()
    used = torch.unique(ids[(ids >= 10)])
    near = dict(zip(used.tolist(), neighbours(table, used, k=2).tolist(), strict=True))
    changed = 0
    for row in range(len(out)):
        for position in range(1, int(attended[row].sum()) - 1):
            before, after = int(ids[source[row], position]), int(out[row, position])
            assert after in near[before]
            changed += after != before
    assert changed > 0


def test_copies_are_seeded() -> None:
    config = AugmentConfig(copies=3)
    table = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    first, again, other = (
        augment(config, table=table),
        augment(config, table=table),
        augment(config, seed=1, table=table),
    )
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_nothing_altered_without_chances() -> None:
    ids, mask = rows()
    out, attended, _ = augment(AugmentConfig(copies=2, mask=0.0, replace=0.0, window=0.0))
    assert torch.equal(out, ids.repeat(2, 1)) and torch.equal(attended, mask.repeat(2, 1))


def test_a_token_is_altered_once() -> None:
    with pytest.raises(ValidationError, match="mask \\+ replace must be at most 1"):
        AugmentConfig(mask=0.6, replace=0.6)
