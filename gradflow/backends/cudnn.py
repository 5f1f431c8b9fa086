"""``gradflow.backends.cudnn``: PyTorch's cuDNN flags, accepted and without effect (gradflow
has no cuDNN; see gradflow/backends/__init__.py)."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: gradflow runs its own kernels, not cuDNN."""
    return False


def version() -> None:
    return None
