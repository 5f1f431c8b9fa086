"""The ``>>>`` examples in gradflow's docstrings run as doctests, so none goes stale.

Each module with examples is one test; an example sees its module's globals plus ``gradflow``
(as a reader who ran ``import gradflow`` would). Output is compared with ELLIPSIS and
NORMALIZE_WHITESPACE.
"""

import doctest
import importlib
import io
import pkgutil

import pytest

import gradflow

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, name, extraglobs={"gradflow": gradflow})
    return [t for t in tests if t.examples]


MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(gradflow.__path__, "gradflow.")
    if _examples(info.name)
)


def test_docstrings_have_examples_to_run():
    assert len(MODULES) >= 5, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    gradflow.manual_seed(0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    for test in _examples(name):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, report.getvalue()
