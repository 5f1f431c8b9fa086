"""The results of a `gradflow bench` run: one row per case, the printed table and the JSON
record (every figure, the ceilings and the machine description)."""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any

from gradflow.bench.ceilings import fraction_of_ceiling
from gradflow.bench.machine import machine_description
from gradflow.bench.suites import Case
from gradflow.bench.timing import BenchResult, format_seconds

COLUMNS = ("suite", "op", "shape", "median", "CPU time", "throughput", "% of ceiling",
           "peak memory", "vs torch")  # fmt: skip
CACHE_MARK = "*"  # after the % of a case whose working set fits in the last-level cache


@dataclass
class Row:
    """A case's figures: gradflow's result, torch's when it ran, and the case's ceilings
    (ceilings.case_ceilings: the copy ceiling at its working set, or the run's ceilings)."""

    case: Case
    ours: BenchResult
    torch: BenchResult | None
    ceilings: dict

    @property
    def fraction_of_ceiling(self) -> float | None:
        """FLOP/s over the GEMM rate for FLOP-counted cases, else GB/s over copy bandwidth."""
        ours = self.ours
        return fraction_of_ceiling(ours.median, self.ceilings, ours.bytes_moved, ours.flops)

    @property
    def ratio_to_torch(self) -> float | None:
        """gradflow's median over torch's (below 1: gradflow is faster): CPU time on the CPU
        (which other jobs on a shared machine distort less than wall time), else device time."""
        if self.torch is None:
            return None
        ours, theirs = self.ours.cpu_median, self.torch.cpu_median
        if ours is None or theirs is None or theirs <= 0:
            return self.ratio_to_torch_wall
        return ours / theirs

    @property
    def ratio_to_torch_wall(self) -> float | None:
        """gradflow's wall (or device) time median over torch's."""
        return self.ours.median / self.torch.median if self.torch is not None else None

    @property
    def cache_resident(self) -> bool:
        return bool(self.ceilings.get("cache_resident"))

    def cells(self) -> tuple[str, ...]:
        """The row as the table prints it ("-" where a figure does not apply)."""
        if self.ours.tflops is not None:
            throughput = f"{self.ours.tflops:.3g} TFLOP/s"
        elif self.ours.gbps is not None:
            throughput = f"{self.ours.gbps:.3g} GB/s"
        else:
            throughput = "-"
        fraction, ratio = self.fraction_of_ceiling, self.ratio_to_torch
        return (
            self.case.suite,
            self.case.name,
            self.case.shape,
            format_seconds(self.ours.median),
            "-" if self.ours.cpu_median is None else format_seconds(self.ours.cpu_median),
            throughput,
            "-" if fraction is None else f"{100 * fraction:.1f}%" + self._cache_mark(),
            format_bytes(self.ours.peak_memory_bytes),
            "-" if ratio is None else f"{ratio:.2f}x",
        )

    def _cache_mark(self) -> str:
        return CACHE_MARK if self.cache_resident and self.case.bytes_moved else ""

    def to_dict(self) -> dict:
        """Every figure of the row, JSON-ready."""
        return {
            "suite": self.case.suite,
            "op": self.case.name,
            "shape": self.case.shape,
            "size": self.case.size,
            "gradflow": self.ours.to_dict(),
            "torch": None if self.torch is None else self.torch.to_dict(),
            "ceilings": self.ceilings,
            "fraction_of_ceiling": self.fraction_of_ceiling,
            "ratio_to_torch": self.ratio_to_torch,
            "ratio_to_torch_wall": self.ratio_to_torch_wall,
        }


def format_bytes(n: float) -> str:
    """A byte count in B, KiB, MiB or GiB, two decimals (gradflow's peak memory
    of one call: NumPy's buffers under tracemalloc, or CuPy's pool on a GPU)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table with a header."""
    lines = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    right = {3, 4, 5, 6, 7, 8}  # numbers align right

    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(line, widths))).rstrip()  # fmt: skip

    rule = "  ".join("-" * w for w in widths)
    text = [fmt(lines[0]), rule, *(fmt(line) for line in lines[1:])]
    if any(row._cache_mark() for row in rows):
        text.append(f"{CACHE_MARK} working set in the last-level cache: % of a copy of the same "
                    "size, from the cache")  # fmt: skip
    return "\n".join(text)


def geometric_mean(values: list[float]) -> float:
    """The geometric mean of positive values (issue 17's yardstick over ratios to torch)."""
    return math.exp(sum(math.log(v) for v in values) / len(values))


def geometric_mean_ratio(rows: list[Row]) -> tuple[float, int] | None:
    """The geometric mean of the rows' ratios to torch and how many rows have one, or None
    when no row was compared."""
    ratios = [r for row in rows if (r := row.ratio_to_torch) is not None and r > 0]
    if not ratios:
        return None
    return geometric_mean(ratios), len(ratios)


def record(rows: list[Row], device: str, ceilings: dict, command: list[str]) -> dict[str, Any]:
    """The whole run as one JSON-ready dict: when, how, on what machine, every figure."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "device": device,
        "machine": machine_description(),
        "ceilings": ceilings,
        "results": [row.to_dict() for row in rows],
    }


def write_json(path: str, data: dict) -> None:
    """Write the record to `path` (indented, UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
