"""The corpus: everyday PyTorch user code, written once, run with torch and with
``import gradflow as torch``; the results must agree (values, shapes, dtypes, Python types).

Snippets live in compat_tensors.py, compat_nn.py, compat_training.py, compat_idioms.py and
compat_semantics.py; each is
``def name(torch): ...`` and reads as PyTorch code. KNOWN_FAILURES lists the snippets that
fail today and why; each is an xfail(strict=True), so it must be removed once fixed.
DELIBERATE_DIFFERENCES lists the snippets that run but give another result on purpose; they
are strict xfails only where torch is installed to show the difference.
"""

import importlib

import compat_corpus
import pytest

import gradflow

try:  # the yardstick when installed; without it every snippet still runs under gradflow
    import torch
except ImportError:
    torch = None

for _module in (
    "compat_tensors",
    "compat_nn",
    "compat_training",
    "compat_idioms",
    "compat_semantics",
):
    importlib.import_module(_module)

# name -> why it fails under gradflow today (removed as the names land)
KNOWN_FAILURES: dict[str, str] = {}

# name -> a deliberate difference: the snippet runs under gradflow, but its result differs
# from torch's, so it fails only where torch is there to compare against
DELIBERATE_DIFFERENCES: dict[str, str] = {
    "named_modules_and_types": "str(dtype) is 'float32' (a NumPy dtype); torch's is "
    "'torch.float32'",
}


def _params():
    for item in compat_corpus.SNIPPETS:
        marks = []
        if item.name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[item.name]))
        elif item.name in DELIBERATE_DIFFERENCES and torch is not None:
            reason = DELIBERATE_DIFFERENCES[item.name]
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        yield pytest.param(item, id=item.name, marks=marks)


def test_known_failures_name_snippets():
    names = {item.name for item in compat_corpus.SNIPPETS}
    assert not (set(KNOWN_FAILURES) | set(DELIBERATE_DIFFERENCES)) - names
    assert len(names) == len(compat_corpus.SNIPPETS), "two snippets share a name"


@pytest.mark.parametrize("item", list(_params()))
def test_snippet_matches_torch(item):
    gradflow.manual_seed(0)
    got = compat_corpus.normalize(item.run(gradflow))
    if torch is None:
        return  # it ran as PyTorch code under gradflow; the values need torch to compare
    torch.manual_seed(0)
    expected = compat_corpus.normalize(item.run(torch))
    if item.compare:
        compat_corpus.assert_same(got, expected, item.rtol, item.atol)
    else:
        assert type(got) is type(expected)
