"""The engine behind `gradflow bench`, shared with the pytest suites in benchmarks/: the
workloads (workloads.py, array_workloads.py, written once for gradflow and torch through
frameworks.py), the timer with device sync and peak memory (timing.py), ceilings, the
figures of a comparison (figures.py), the suites, the report; ``backward`` /
``backward_module`` for timing the backward pass of user code (backward_pass.py), and
``model`` for a user's whole model, layer by layer, against torch (user_model.py)."""

from gradflow.bench.backward_pass import backward, backward_module
from gradflow.bench.timing import BenchResult, measure, time_calls
from gradflow.bench.user_model import ModelReport, model

__all__ = ["BenchResult", "ModelReport", "backward", "backward_module", "measure", "model",
           "time_calls"]  # fmt: skip
