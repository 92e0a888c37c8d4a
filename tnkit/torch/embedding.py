"""MPOEmbedding: ``nn.Embedding`` whose table ``(num_embeddings, embedding_dim)`` is an MPO.

Holds parameters only: the lookups are the core's (``tnkit.layer_maps``), the cores'
bookkeeping ``MPOMatrix``'s, decompositions the core library's.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import array_api_compat.torch as torch_xp
import torch
from torch import nn

from .._checks import check_int, is_int
from ..layer_maps import embedding_lookup, embedding_table, gather_flops, lookup_order
from ._common import MPOMatrix, check_module, convert, dense_module


class MPOEmbedding(MPOMatrix):
    """``nn.Embedding`` with the table ``W (num_embeddings, embedding_dim)`` an MPO.

    The rows (the vocabulary) are the MPO's output legs: ``out_dims`` factor
    ``num_embeddings`` and ``in_dims`` factor ``embedding_dim``, with the defaults, padding
    and bonds of [MPOLinear][tnkit.torch.MPOLinear] (keywords ``n_cores``, ``in_dims``,
    ``out_dims``, ``max_bond``, ``bond_dims``). The initial table has exactly the norm
    of ``nn.Embedding``'s ``N(0, 1)`` init in expectation, ``‖W‖_F² = num·dim``.

    ``forward`` looks rows up without building the table: each index is split into its
    multi-index ``(i_1..i_N)`` (C order), each core's slice ``[:, i_k]`` is taken and the
    chain of slices contracted, ``lookup_flops`` per index. If the batch has so many indices
    that building the table is cheaper (``contraction_order(n)``), it is built instead.

    ``padding_idx``: lookups of that index return zeros and pass no gradient to the cores
    (``weight`` and ``to_embedding()`` show that row as zeros). ``nn.Embedding`` zero-inits
    that row and never updates it, so both agree unless its row was set by hand.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOEmbedding
        >>> emb = MPOEmbedding(10000, 256, max_bond=8)
        >>> emb.out_dims, emb.in_dims, sum(p.numel() for p in emb.parameters())
        ((10, 10, 10, 10), (4, 4, 4, 4), 5760)
        >>> emb(torch.tensor([[1, 2, 9999]])).shape
        torch.Size([1, 3, 256])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        device: Any = None,
        dtype: Any = None,
        **layout: Any,
    ) -> None:
        num_embeddings = check_int(num_embeddings, "num_embeddings", minimum=1)
        embedding_dim = check_int(embedding_dim, "embedding_dim", minimum=1)
        if padding_idx is not None:
            if not is_int(padding_idx) or not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"padding_idx: must be an int in [-{num_embeddings}, {num_embeddings}), "
                    f"got {padding_idx!r}"
                )
            padding_idx = int(padding_idx) % num_embeddings
        super().__init__(
            num_embeddings,
            embedding_dim,
            device=device,
            dtype=dtype,
            **layout,
        )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random canonical cores with ``‖W‖_F² = num_embeddings·embedding_dim`` exactly."""
        self._reset_cores(math.sqrt(self.num_embeddings * self.embedding_dim))

    # ------------------------------------------------------------------ forward

    @property
    def lookup_flops(self) -> int:
        """Flops of one row looked up core by core (2·multiply-adds)."""
        return gather_flops(self.in_dims, self.bond_dims)

    def contraction_order(self, batch: int) -> str:
        """``"gather"`` (core by core) or ``"dense"`` (build the table) for ``batch``
        indices: the one with fewer flops."""
        return lookup_order(self.plan, batch)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """``indices (...)`` (integers) -> ``(..., embedding_dim)``."""
        if indices.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"indices: expected an int64 or int32 tensor, got {indices.dtype}")
        flat = indices.reshape(-1)
        if indices.device.type == "cpu" and flat.numel() and not torch.compiler.is_compiling():
            low, high = int(flat.min()), int(flat.max())
            if low < 0 or high >= self.num_embeddings:
                raise IndexError(
                    f"indices: must lie in [0, {self.num_embeddings}), got values in "
                    f"[{low}, {high}]"
                )
        rows = embedding_lookup(
            list(self.cores),
            flat,
            plan=self.plan,
            padding_idx=self.padding_idx,
            order=self.contraction_order(flat.shape[0]),
            xp=torch_xp,
        )
        return rows.reshape(*indices.shape, self.embedding_dim)

    @property
    def weight(self) -> torch.Tensor:
        """The dense table ``(num_embeddings, embedding_dim)`` as ``forward`` sees it (the
        ``padding_idx`` row zero), differentiable in the cores."""
        cores = list(self.cores)
        return embedding_table(cores, plan=self.plan, padding_idx=self.padding_idx, xp=torch_xp)

    def extra_repr(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}, {self._layout_repr()}"

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding, **options: Any) -> MPOEmbedding:
        """An MPOEmbedding of ``embedding``'s table by ``tn.MPO.from_matrix``.

        ``options`` as [MPOLinear.from_linear][tnkit.torch.MPOLinear.from_linear]'s.
        ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are not supported (ValueError).

        Example:
            >>> import torch
            >>> from tnkit.torch import MPOEmbedding
            >>> emb = MPOEmbedding.from_embedding(torch.nn.Embedding(1000, 64), max_bond=16)
            >>> emb.bond_dims, emb.report.compression_ratio > 4
            ((10, 16, 16), True)
        """
        check_module(embedding, nn.Embedding, "embedding")
        unsupported = {
            "max_norm": embedding.max_norm,
            "scale_grad_by_freq": embedding.scale_grad_by_freq,
            "sparse": embedding.sparse,
        }
        for name, value in unsupported.items():
            if value:
                raise ValueError(f"embedding: {name}={value!r} is not supported")
        build = functools.partial(
            cls, embedding.num_embeddings, embedding.embedding_dim, embedding.padding_idx
        )
        return convert(build, embedding.weight, **options)

    def to_embedding(self) -> nn.Embedding:
        """A plain ``nn.Embedding`` with the dense table (and ``padding_idx``)."""
        build = functools.partial(
            nn.Embedding, self.num_embeddings, self.embedding_dim, self.padding_idx
        )
        return dense_module(build, self.weight)

    def _state_sizes(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}
