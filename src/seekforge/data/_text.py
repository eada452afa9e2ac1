"""Text tokenization with Hugging Face ``tokenizers``: fitted WordPiece or a pretrained tokenizer.json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.runtime import Tokens

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
_MASK_TOKENS = ("[MASK]", "<mask>")
_UNK_TOKENS = ("[UNK]", "<unk>")


def _tokenizers() -> Any:
    return require("tokenizers", purpose="text features")


class TextEncoder(Tokens):
    """A tokenizer with fixed truncation and padding to ``max_length`` (the runtime's :class:`Tokens`, which
    encodes the same way without torch), fitted or loaded, with what training needs of it besides.

    The tokenizer's full JSON is kept, so a package needs neither the training data nor the pretrained
    model's folder to tokenize.
    """

    def __init__(self, tokenizer_json: str, max_length: int, origin: str) -> None:
        super().__init__(tokenizer_json, max_length)
        self.origin = origin
        self._counter: Any = None  # the same tokenizer without padding and truncation, for lengths()

    @classmethod
    def fit(
        cls,
        texts: list[str],
        *,
        max_length: int,
        vocab_size: int,
        lowercase: bool,
        pretrained: str | Path | None,
    ) -> TextEncoder:
        """Load ``pretrained`` (a tokenizer.json) or build a WordPiece vocabulary from ``texts``."""
        tk = _tokenizers()
        if pretrained is not None:
            tokenizer = tk.Tokenizer.from_file(str(pretrained))
            return cls(tokenizer.to_str(), max_length, f"pretrained:{pretrained}")
        # The library's WordPiece trainer breaks ties between merges differently from run to run, which
        # would make a recipe's weights depend on luck. The vocabulary is built here instead, with the
        # library's own normaliser and pre-tokeniser: every character seen (so no word is unknown), then
        # the most frequent words, ties broken alphabetically. WordPiece's greedy longest match then
        # keeps frequent words whole and spells rare ones out.
        return cls.from_counts(cls.word_counts(texts, lowercase=lowercase), max_length=max_length,
                               vocab_size=vocab_size, lowercase=lowercase)  # fmt: skip

    @staticmethod
    def word_counts(texts: list[str], *, lowercase: bool) -> Counter[str]:
        """How often each word of ``texts`` occurs, as the fitted tokenizer normalises and splits them."""
        tk = _tokenizers()
        normalizer = tk.normalizers.BertNormalizer(lowercase=lowercase)
        pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
        return counts

    @classmethod
    def from_counts(
        cls, counts: Counter[str], *, max_length: int, vocab_size: int, lowercase: bool, chars: set[str] | None = None
    ) -> TextEncoder:
        """The fitted WordPiece tokenizer of these word counts (``chars``: every character seen, when the
        counts leave rare words out)."""
        tk = _tokenizers()
        normalizer = tk.normalizers.BertNormalizer(lowercase=lowercase)
        pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
        alphabet = sorted(chars if chars is not None else {char for word in counts for char in word})
        vocab = SPECIAL_TOKENS + alphabet + [f"##{c}" for c in alphabet]
        words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
        vocab += words[: max(0, vocab_size - len(vocab))]
        model = tk.models.WordPiece(vocab={token: i for i, token in enumerate(vocab)}, unk_token="[UNK]")
        tokenizer = tk.Tokenizer(model)
        tokenizer.normalizer = normalizer
        tokenizer.pre_tokenizer = pre_tokenizer
        tokenizer.decoder = tk.decoders.WordPiece()
        tokenizer.post_processor = tk.processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
        return cls(tokenizer.to_str(), max_length, "fitted")

    @property
    def special_ids(self) -> set[int]:
        """Ids of the tokenizer's special tokens (padding, unknown, the row's first and last ...)."""
        named = {
            self._tok.token_to_id(token) for token in (*SPECIAL_TOKENS, *_MASK_TOKENS, "<s>", "</s>", "<pad>", "<unk>")
        }
        added = {i for i, token in self._tok.get_added_tokens_decoder().items() if token.special}
        return {i for i in named | added if i is not None}

    @property
    def mask_id(self) -> int | None:
        """The mask token's id: ``[MASK]`` (or ``<mask>``), else the unknown token's; None without either."""
        return self._first_id(*_MASK_TOKENS, *_UNK_TOKENS)

    @property
    def unk_id(self) -> int:
        """The unknown token's id (``[UNK]`` or ``<unk>``).

        Raises:
            DataError: The tokenizer has no unknown token.
        """
        unk = self._first_id(*_UNK_TOKENS)
        if unk is None:
            raise DataError("the tokenizer has no unknown token ([UNK] or <unk>) for tokens it has no row for")
        return unk

    def _first_id(self, *tokens: str) -> int | None:
        """The id of the first of ``tokens`` the tokenizer has, or None."""
        found = (self._tok.token_to_id(token) for token in tokens)
        return next((int(i) for i in found if i is not None), None)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, both ``[len(texts), max_length]`` int64."""
        ids, mask = self.encode_arrays(texts)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def tokens(self, ids: list[int]) -> list[str]:
        """Each id's token as the tokenizer writes it (``##ing`` for a word's continuation)."""
        return [self._tok.id_to_token(int(i)) or "?" for i in ids]

    def lengths(self, texts: list[str]) -> list[int]:
        """Tokens per text, special tokens included, before truncation and padding (for data sketches)."""
        if self._counter is None:
            self._counter = _tokenizers().Tokenizer.from_str(self.tokenizer_json)
            self._counter.no_padding()
            self._counter.no_truncation()
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_json, "max_length": self.max_length, "origin": self.origin}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TextEncoder:
        return cls(state["tokenizer"], state["max_length"], state["origin"])
