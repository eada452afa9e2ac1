"""A token embedding table that can be factored (a low-rank pair) and trimmed to the token ids a data
set uses, so a distilled student carries only the rows it needs."""

from __future__ import annotations

import torch
from torch import nn

from seekforge.core.errors import ConfigError


class TokenTable(nn.Module):
    """Token embeddings that need not be a whole ``[vocabulary, width]`` table.

    With ``rank``, the table is factorised: ``[rows, rank] @ [rank, width]`` plus an offset. With ``rows``,
    it holds rows for some tokens only (buffer ``ids``), and every other token reads the unknown token's
    row (buffer ``index`` maps a token id to its row). Both keep a student's embeddings small while
    its encoder keeps the teacher's width.
    """

    def __init__(self, vocab: int, width: int, *, rank: int | None = None, rows: int | None = None) -> None:
        super().__init__()
        if rank is not None and rank >= width:
            raise ConfigError(f"model.token_rank ({rank}) must be below the encoder's width ({width})")
        self.vocab, self.width = vocab, width
        self.table = nn.Embedding(rows or vocab, rank or width)
        self.project = nn.Linear(rank, width) if rank is not None else None
        self.ids: torch.Tensor | None
        self.index: torch.Tensor | None
        if rows is None:
            self.ids = self.index = None
        else:
            self.register_buffer("ids", torch.zeros(rows, dtype=torch.long))
            self.register_buffer("index", torch.zeros(vocab, dtype=torch.long))

    @property
    def rows(self) -> int:
        return self.table.num_embeddings

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.index is not None:
            ids = self.index[ids]
        out = self.table(ids)
        return out if self.project is None else self.project(out)

    @property
    def weight(self) -> torch.Tensor:
        """Every token's embedding, ``[vocabulary, width]`` (computed)."""
        return self(torch.arange(self.vocab, device=self.table.weight.device))

    @torch.no_grad()
    def load(self, full: torch.Tensor) -> None:
        """Take the embeddings of a whole table ``[vocabulary, width]``: the rows this table holds, and when
        factorised, their projection on their leading principal axes (the offset is their mean)."""
        rows = full.detach().double()
        if self.ids is not None:
            rows = rows[self.ids]
        if self.project is None:
            self.table.weight.copy_(rows)
            return
        mean = rows.mean(dim=0)
        u, s, vh = torch.linalg.svd(rows - mean, full_matrices=False)
        k = min(self.table.embedding_dim, len(s))  # a table with fewer rows than the rank keeps the rest
        self.table.weight[:, :k] = (u[:, :k] * s[:k]).float()
        self.project.weight.zero_()
        self.project.weight[:, :k] = vh[:k].T.float()
        self.project.bias.copy_(mean.float())

    @classmethod
    @torch.no_grad()
    def keeping(cls, source: nn.Module, ids: torch.Tensor, *, unknown: int) -> TokenTable:
        """A table with rows for ``ids`` (and ``unknown``) only, every other token reading ``unknown``'s
        row, from ``source`` (an ``nn.Embedding`` or a TokenTable, whose factorisation it keeps): the
        embeddings it keeps are the source's."""
        assert isinstance(source, nn.Embedding | TokenTable)
        full = source.weight
        rank = source.table.embedding_dim if isinstance(source, TokenTable) and source.project is not None else None
        kept = torch.unique(torch.cat([ids.flatten().long(), torch.tensor([unknown])]))
        out = cls(full.shape[0], full.shape[1], rank=rank, rows=len(kept)).to(full.device)
        assert out.ids is not None and out.index is not None
        out.ids.copy_(kept)
        out.index.fill_(int(torch.searchsorted(kept, torch.tensor(unknown))))
        out.index[kept] = torch.arange(len(kept))
        out.load(full)
        return out
