from __future__ import annotations

from seekforge.data import TextEncoder


def test_lengths_count_tokens_before_padding_and_truncation() -> None:
    texts = ["good food", "the food was good and the service was good too, every single time", ""]
    encoder = TextEncoder.fit(texts * 5, max_length=8, vocab_size=200, lowercase=True, pretrained=None)
    short, long, empty = encoder.lengths(texts)
    assert short < 8 < long  # neither padded up to nor cut down at max_length
    assert empty < short
    assert encoder.encode(texts)[0].shape == (3, 8)  # encoding itself still pads and truncates


def test_special_tokens_and_the_mask_token() -> None:
    texts = ["good food", "the food was good"]
    fitted = TextEncoder.fit(texts, max_length=8, vocab_size=100, lowercase=True, pretrained=None)
    ids, _ = fitted.encode(["good food"])
    assert fitted.special_ids == {0, 1, 2, 3}  # [PAD] [UNK] [CLS] [SEP]
    assert int(ids[0, 0]) in fitted.special_ids and int(ids[0, 1]) not in fitted.special_ids
    assert fitted.mask_id == 1  # a fitted vocabulary has no [MASK]: [UNK] stands for a hidden token
