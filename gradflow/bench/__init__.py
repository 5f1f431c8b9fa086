"""The engine behind `gradflow bench`, shared with the pytest suites in benchmarks/: the
workloads (workloads.py, array_workloads.py, written once for gradflow and torch through
frameworks.py), the timer with device sync and peak memory (timing.py), ceilings, the
figures of a comparison (figures.py), the suites, the report; and ``backward`` /
``backward_module`` for timing the backward pass of user code (backward_pass.py)."""

from gradflow.bench.backward_pass import backward, backward_module
from gradflow.bench.timing import BenchResult, measure, time_calls

__all__ = ["BenchResult", "backward", "backward_module", "measure", "time_calls"]
