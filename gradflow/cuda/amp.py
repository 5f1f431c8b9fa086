"""``gradflow.cuda.amp``: PyTorch's older spelling of gradflow.amp (autocast, GradScaler)."""

from gradflow.amp import GradScaler
from gradflow.amp import autocast as _autocast


class autocast(_autocast):
    def __init__(self, enabled: bool = True, dtype: object = None, cache_enabled: object = None):
        super().__init__("cuda", dtype, enabled, cache_enabled)


__all__ = ["GradScaler", "autocast"]
