"""The engine behind `gradflow bench`, shared with benchmarks/: timing with device sync and
peak memory (``backward``, ``backward_module``), ceilings, the suites, the report."""

from gradflow.bench.timing import BenchResult, backward, backward_module, measure, time_calls

__all__ = ["BenchResult", "backward", "backward_module", "measure", "time_calls"]
