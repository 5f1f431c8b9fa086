"""The op library: one module per family, each op a Function subclass plus a public function.

NumPy's floating-point warnings ("divide by zero encountered in log", "invalid value
encountered in divide", overflow) are answers here, not accidents: log(0) is -inf and 0/0 is nan
in PyTorch too, which never warns (masks are built as log(tril(ones))). They are ignored when
raised from gradflow's own code, at no cost per op (the filter is read only when NumPy warns);
NumPy code of the user's still warns, and `gradflow.autograd.detect_anomaly` finds where a
NaN or Inf appears.
"""

import warnings as _warnings

_warnings.filterwarnings(
    "ignore",
    message=r"(divide by zero|invalid value|overflow|underflow) encountered",
    category=RuntimeWarning,
    module=r"gradflow(\.|$)",
)
