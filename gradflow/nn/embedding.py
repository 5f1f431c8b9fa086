"""Embedding: a lookup table from integer indices to learned vectors."""

from __future__ import annotations

import numbers
from typing import Any

from gradflow import creation
from gradflow.nn import init
from gradflow.nn.module import Module, check_size
from gradflow.nn.parameter import Parameter
from gradflow.ops import embedding as embedding_ops
from gradflow.tensor import Tensor


def _row_index(layer: str, padding_idx: Any, num_embeddings: int) -> int:
    """padding_idx checked to lie in [-num_embeddings, num_embeddings), as a row number."""
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"{layer}: padding_idx must be within [-{num_embeddings}, {num_embeddings}), got "
            f"{padding_idx}"
        )
    return int(padding_idx) % num_embeddings


class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer indices of any shape.

    weight starts from N(0, 1) as in PyTorch; the row at `padding_idx` starts at zero and gets
    no gradient. ``scale_grad_by_freq=True`` divides each row's gradient by how often the row
    occurs in the batch's indices. ``max_norm`` rescales, in place, the rows a lookup picks
    whose ``norm_type`` norm exceeds it. PyTorch's signature; ``sparse=True`` (sparse
    gradients) is refused with a NotImplementedError. ``_weight`` starts the table from a given
    tensor (shared, not copied) and ``_freeze=True`` leaves it without a gradient, as in
    :meth:`from_pretrained`.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        num_embeddings = check_size("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = check_size("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
                raise TypeError(
                    f"Embedding: padding_idx must be an int or None, got "
                    f"{type(padding_idx).__name__} {padding_idx!r}"
                )
            padding_idx = _row_index("Embedding", padding_idx, num_embeddings)
        if sparse:
            raise NotImplementedError(
                "Embedding: sparse=True is not supported (gradflow has no sparse gradients); "
                "pass sparse=False to get a dense weight gradient"
            )
        if not isinstance(scale_grad_by_freq, bool):
            raise TypeError(
                f"Embedding: scale_grad_by_freq must be a bool, got "
                f"{type(scale_grad_by_freq).__name__} {scale_grad_by_freq!r}"
            )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(creation.empty(num_embeddings, embedding_dim, device=device,
                                                   dtype=dtype))  # fmt: skip
            self.reset_parameters()
        else:
            if not isinstance(_weight, Tensor):
                raise TypeError(
                    f"Embedding: _weight must be a Tensor, got {type(_weight).__name__}"
                )
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"Embedding: _weight has shape {tuple(_weight.shape)}, but num_embeddings="
                    f"{num_embeddings} and embedding_dim={embedding_dim} need "
                    f"({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)
        if _freeze:
            self.weight.requires_grad = False

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose table is `embeddings` (num_embeddings, embedding_dim), shared
        not copied; ``freeze`` (the default) leaves it without a gradient. As PyTorch's.

        >>> import gradflow
        >>> layer = Embedding.from_pretrained(gradflow.ones(4, 2))
        >>> tuple(layer(gradflow.tensor([1, 3])).shape), layer.weight.requires_grad
        ((2, 2), False)
        """
        if not isinstance(embeddings, Tensor):
            raise TypeError(
                "Embedding.from_pretrained: embeddings must be a Tensor (num_embeddings, "
                f"embedding_dim), got {type(embeddings).__name__}"
            )
        if embeddings.ndim != 2:
            raise ValueError(
                "Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, "
                f"embedding_dim), got shape {tuple(embeddings.shape)}"
            )
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)  # fmt: skip

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    def forward(self, indices: Tensor) -> Tensor:
        return embedding_ops.embedding(
            indices, self.weight, self.padding_idx, self.max_norm, self.norm_type,
            self.scale_grad_by_freq,
        )  # fmt: skip

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embedding rows (PyTorch's nn.EmbeddingBag), without
    building the per-index lookup in between.

    forward(input, offsets=None, per_sample_weights=None): input 2-D (B, N) is B bags of N
    indices; 1-D input needs offsets, each bag's start. weight starts from N(0, 1); the row at
    `padding_idx` starts at zero, is left out of every bag and gets no gradient.
    ``max_norm`` rescales the rows a lookup picks, as in Embedding; ``sparse=True`` is refused
    with a NotImplementedError.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Tensor | None = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        num_embeddings = check_size("EmbeddingBag", "num_embeddings", num_embeddings)
        embedding_dim = check_size("EmbeddingBag", "embedding_dim", embedding_dim)
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode has to be one of sum, mean or max, got {mode!r}")
        if padding_idx is not None:
            padding_idx = _row_index("EmbeddingBag", padding_idx, num_embeddings)
        if sparse:
            raise NotImplementedError(
                "EmbeddingBag: sparse=True is not supported (gradflow has no sparse "
                "gradients); pass sparse=False to get a dense weight gradient"
            )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.mode, self.sparse = scale_grad_by_freq, mode, sparse
        self.include_last_offset, self.padding_idx = include_last_offset, padding_idx
        if _weight is None:
            self.weight = Parameter(creation.empty(num_embeddings, embedding_dim, device=device,
                                                   dtype=dtype))  # fmt: skip
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"EmbeddingBag: _weight has shape {tuple(_weight.shape)}, but "
                    f"num_embeddings={num_embeddings} and embedding_dim={embedding_dim} need "
                    f"({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(_weight)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An EmbeddingBag whose table is `embeddings`, shared not copied; ``freeze`` (the
        default) leaves it without a gradient."""
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            raise ValueError(
                "EmbeddingBag.from_pretrained: embeddings must be a 2-D Tensor "
                f"(num_embeddings, embedding_dim), got {getattr(embeddings, 'shape', embeddings)}"
            )
        rows, dim = embeddings.shape
        bag = cls(rows, dim, max_norm, norm_type, scale_grad_by_freq, mode, sparse, embeddings,
                  include_last_offset, padding_idx)  # fmt: skip
        bag.weight.requires_grad = not freeze
        return bag

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    def forward(
        self,
        input: Tensor,
        offsets: Tensor | None = None,
        per_sample_weights: Tensor | None = None,
    ) -> Tensor:
        return embedding_ops.embedding_bag(
            input, self.weight, offsets, self.max_norm, self.norm_type,
            self.scale_grad_by_freq, self.mode, self.sparse, per_sample_weights,
            self.include_last_offset, self.padding_idx,
        )  # fmt: skip

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        text += f", mode='{self.mode}'"
        if self.include_last_offset:
            text += ", include_last_offset=True"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text
