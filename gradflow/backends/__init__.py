"""``gradflow.backends``: PyTorch's backend switches, accepted so PyTorch code runs.

gradflow has no cuDNN (CuPy 14 ships none; convolutions, RNNs and attention are gradflow's own
kernels), no MPS and no TF32 switch. The flags below can be read and set as in PyTorch and
change nothing; ``cudnn.is_available()`` and ``mps.is_available()`` say False, truthfully.
``cudnn.deterministic = True`` is already the case: gradflow's kernels are deterministic
(col2im by gather, no atomics) and its cpu path is NumPy.
"""

from gradflow.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
