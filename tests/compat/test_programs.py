"""Whole PyTorch programs, written for torch (tests/compat/programs/), run under gradflow
with only their import lines renamed, as a user would port them: an LSTM text classifier
with packed sequences, a ResNet, tabular regression with a resumed checkpoint, REINFORCE,
FGSM/PGD, a custom autograd Function, a Conv1d+GRU with OneCycleLR, a U-Net, metric learning,
mixed idioms, distillation and more. Each must run to the end (their own asserts included);
their values differ from torch's only where the random streams do."""

import pathlib
import re
import subprocess
import sys

import pytest

PROGRAMS = sorted((pathlib.Path(__file__).parent / "programs").glob("p[0-9]*.py"))

# the import renames a user makes; nothing else in a program changes
_RENAMES = [
    (r"^(\s*)import torch\.nn\.functional as F$", r"\1import gradflow.nn.functional as F"),
    (r"^(\s*)import torch\.nn as nn$", r"\1import gradflow.nn as nn"),
    (r"^(\s*)import torch\.optim as optim$", r"\1import gradflow.optim as optim"),
    (r"^(\s*)import torch$", r"\1import gradflow as torch"),
    (r"^(\s*)from torch\.(\S+) import", r"\1from gradflow.\2 import"),
    (r"^(\s*)import torch\.(\S+) as", r"\1import gradflow.\2 as"),
]


def ported(source: str) -> str:
    """`source` with its torch imports renamed to gradflow's."""
    for pattern, replacement in _RENAMES:
        source = re.sub(pattern, replacement, source, flags=re.M)
    imports = [
        line for line in source.splitlines() if line.strip().startswith(("import ", "from "))
    ]
    assert not any("torch" in line.split()[1] for line in imports), "an import left unrenamed"
    return source


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.stem)
def test_a_pytorch_program_runs_with_only_its_imports_renamed(program, tmp_path):
    script = tmp_path / program.name
    script.write_text(ported(program.read_text()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{program.name} failed under gradflow:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), "the program printed nothing"
