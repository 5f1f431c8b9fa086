"""The corpus: everyday PyTorch user code, written once, run with torch and with
``import gradflow as torch``; the results must agree (values, shapes, dtypes, Python types).

Snippets live in compat_tensors.py, compat_nn.py, compat_training.py, compat_idioms.py and
compat_semantics.py; each is
``def name(torch): ...`` and reads as PyTorch code. KNOWN_FAILURES lists the snippets that
fail today and why; each is an xfail(strict=True), so it must be removed once fixed.
"""

import importlib

import compat_corpus
import pytest

import gradflow

torch = pytest.importorskip("torch")

for _module in (
    "compat_tensors",
    "compat_nn",
    "compat_training",
    "compat_idioms",
    "compat_semantics",
):
    importlib.import_module(_module)

# name -> why it fails under gradflow today (removed as the names land)
KNOWN_FAILURES: dict[str, str] = {
    "string_formatting": "f'{t}' of a 0-d tensor gives 'tensor(7)'; torch formats the item ('7')",
    "promotion_and_division": "torch.div has no rounding_mode= ('floor', 'trunc')",
    "multihead_attention_shapes": "gradflow.nn has no MultiheadAttention",
    "scaled_dot_product_attention": "nn.functional has no scaled_dot_product_attention",
    "determinism_switches": "no are_deterministic_algorithms_enabled, "
    "set_float32_matmul_precision, set_num_threads/get_num_threads",
    "transformer_encoder_shapes": "gradflow.nn has no TransformerEncoderLayer/TransformerEncoder",
    "numpy_style_aliases": "no gradflow.concatenate (torch's alias of cat)",
    "in_place_shape_ops_and_to_other": "no Tensor.unsqueeze_ / squeeze_",
    "where_single_argument": "torch.where(condition) with one argument (nonzero(as_tuple=True))",
    "named_modules_and_types": "dtypes are NumPy dtypes: str(dtype) gives 'float32', torch "
    "'torch.float32'",
}


def _params():
    for item in compat_corpus.SNIPPETS:
        marks = []
        if item.name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[item.name]))
        yield pytest.param(item, id=item.name, marks=marks)


def test_known_failures_name_snippets():
    names = {item.name for item in compat_corpus.SNIPPETS}
    assert not set(KNOWN_FAILURES) - names
    assert len(names) == len(compat_corpus.SNIPPETS), "two snippets share a name"


@pytest.mark.parametrize("item", list(_params()))
def test_snippet_matches_torch(item):
    torch.manual_seed(0)
    expected = compat_corpus.normalize(item.run(torch))
    gradflow.manual_seed(0)
    got = compat_corpus.normalize(item.run(gradflow))
    if item.compare:
        compat_corpus.assert_same(got, expected, item.rtol, item.atol)
    else:
        assert type(got) is type(expected)
