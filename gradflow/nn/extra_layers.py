"""torch.nn modules over the functions of ops/multilabel_margin.py and ops/pooling_aliases.py:
MultiLabelMarginLoss and LPPool3d (kept apart from nn/loss.py and nn/pooling.py, whose
families they join; gradflow.nn exports them with the rest)."""

from __future__ import annotations

from gradflow.nn.loss import _Loss
from gradflow.nn.pooling import LPPool1d
from gradflow.ops.multilabel_margin import multilabel_margin_loss
from gradflow.ops.pooling_aliases import lp_pool3d
from gradflow.tensor import Tensor


class MultiLabelMarginLoss(_Loss):
    """Multi-class multi-label hinge loss, as torch.nn.MultiLabelMarginLoss: targets are class
    indices padded with -1 (see gradflow.nn.functional.multilabel_margin_loss)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class LPPool3d(LPPool1d):
    """3-D power-average pooling over (N, C, D, H, W) or (C, D, H, W) inputs."""

    _dims = 3

    def forward(self, x: Tensor) -> Tensor:
        return lp_pool3d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)
