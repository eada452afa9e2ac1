from __future__ import annotations

from seekforge.data._text import TextEncoder


def test_lengths_count_tokens_before_padding_and_truncation() -> None:
    texts = ["good food", "the food was good and the service was good too, every single time", ""]
    encoder = TextEncoder.fit(texts * 5, max_length=8, vocab_size=200, lowercase=True, pretrained=None)
    short, long, empty = encoder.lengths(texts)
    assert short < 8 < long  # neither padded up to nor cut down at max_length
    assert empty < short
    assert encoder.encode(texts)[0].shape == (3, 8)  # encoding itself still pads and truncates
