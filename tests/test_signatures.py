"""PyTorch's argument names and positional order for gradflow's public functions.

A PyTorch program runs under gradflow by renaming its import, and PyTorch programs pass
arguments by keyword (``F.pad(input=x, pad=(1, 1))``) and positionally in torch's order
(``F.cross_entropy(x, y, None, None, -100, None, 'sum')``). For every function reachable as
``gradflow.<name>``, ``gradflow.nn.functional.<name>``, ``gradflow.linalg.<name>`` and
``gradflow.special.<name>`` whose torch counterpart exists, each of torch's overloads must have
its positional-or-keyword parameters (``out`` and leading-underscore ones left out) as the
first positional parameters of gradflow's signature, in torch's order, and its keyword-only
parameters among gradflow's (a few torch-only ones left out: TORCH_ONLY_KEYWORDS).

Torch's parameters: ``inspect.signature`` for torch's Python functions; for its C builtins
(torch.sum, torch.gather, ...), which have no signature, every overload the argument parser
lists when it refuses a call, else the signature lines of the docstring ("gather(input, dim,
index, *, sparse_grad=False, out=None) -> Tensor"), with the required names the parser reports
taking precedence over the docstring's where they differ (torch.linalg.cholesky's docstring
says ``A``; the parser accepts only ``input``).

Needs torch to compare against (skipped without it, as in CI).
"""

import inspect
import re
import warnings

import numpy
import pytest

torch = pytest.importorskip("torch")

import gradflow  # noqa: E402
import gradflow.nn.functional as F  # noqa: E402

NAMESPACES = {
    "torch": (torch, gradflow),
    "torch.nn.functional": (torch.nn.functional, gradflow.nn.functional),
    "torch.linalg": (torch.linalg, gradflow.linalg),
    "torch.special": (torch.special, gradflow.special),
}

# torch's keyword-only arguments that gradflow leaves out on purpose (the module docstring of
# gradflow/layout.py): out= (gradflow has no out= arguments) and the factory options about
# memory layout and pinning, which change nothing in a dense NumPy/CuPy tensor.
TORCH_ONLY_KEYWORDS = frozenset({"out", "layout", "pin_memory", "memory_format"})

# Overloads torch tells apart by the type of an argument at one position, which one Python
# signature can't name twice: gradflow takes the other overload's argument in that place and
# dispatches on its type, and takes its name as a keyword. At those positions only the name's
# presence is checked; the behaviour is tested below.
DISPATCHED = {
    # max(input, other): a Tensor in dim's place (or other=) is the elementwise max/min
    ("torch", "max"): ("other",),
    ("torch", "min"): ("other",),
    # var(input, unbiased): a bool in dim's place is unbiased
    ("torch", "var"): ("unbiased",),
    ("torch", "std"): ("unbiased",),
    ("torch", "var_mean"): ("unbiased",),
    ("torch", "std_mean"): ("unbiased",),
    # the split's second argument is indices (a list) or sections (an int) by type; gradflow's
    # positional is the documented indices_or_sections and takes torch's names as keywords
    ("torch", "tensor_split"): ("indices", "sections", "tensor_indices_or_sections"),
    ("torch", "hsplit"): ("indices", "sections"),
    ("torch", "vsplit"): ("indices", "sections"),
    ("torch", "dsplit"): ("indices", "sections"),
    # repeat_interleave(repeats): a counts tensor alone (first, or as repeats=)
    ("torch", "repeat_interleave"): ("repeats",),
    # scatter(input, dim, index, value): a number in src's place is value
    ("torch", "scatter"): ("value",),
    # arange(end) and randint(high, size): one number is the end (the high bound); the keyword
    # forms are gradflow/creation.py's to take (test_creation_keyword_forms)
    ("torch", "arange"): ("end",),
    ("torch", "randint"): ("high", "size"),
    # randint_like(input, high) and (input, low, high): one number is the high bound
    ("torch", "randint_like"): ("high",),
    # isin(elements, test_element) and isin(element, test_elements): a number on one side takes
    # the singular name; gradflow's positionals are elements, test_elements and take either
    ("torch", "isin"): ("element", "test_element"),
}

# gradflow.compile(model, **options) takes every keyword (it returns the model unchanged):
# checked by calling it with torch's keywords (test_compile_takes_torchs_keywords).
BY_CALL = {("torch", "compile")}

# torch.unique_consecutive and torch.lu are def f(*args, **kwargs) with no signature line in
# their docstrings: their parameters as their docstrings' Args list them.
DOCUMENTED = {
    ("torch", "unique_consecutive"): [
        (["input", "return_inverse", "return_counts", "dim"], [], False),
    ],
    ("torch", "lu"): [(["A", "pivot", "get_infos"], [], False)],
}

# Functions whose signatures don't match torch's yet (strict xfails: each fails now, and says
# so once it is fixed). None today.
OUTSIDE_OPS: dict = {}


# ---- torch's signatures ----------------------------------------------------------------------
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


def _split_top(text):
    """text split at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return [*parts, current.strip()] if current.strip() else parts


def _parse(params, typed):
    """(positional names, keyword-only names, has *args) from a parameter list's text, the
    parser's ``Tensor input, int dim = 0`` (typed) or a docstring's ``input, dim=0``; None when
    a parameter isn't a plain name (prose in a docstring)."""
    positional, keyword, star = [], [], False
    for p in _split_top(params):
        p = p.replace("\\*", "*")
        if p == "*":
            star = True
            continue
        if p.startswith("*"):  # *size, *tensors: the names after it are keyword-only
            star, varargs = True, p.lstrip("*").split(":")[0].strip()
            if not _IDENT.match(varargs):
                return None
            positional.append("*")
            continue
        head = p.split("=")[0].strip()
        name = head.split()[-1] if typed and head else head.split(":")[0].strip()
        if not _IDENT.match(name):
            return None
        (keyword if star else positional).append(name)
    varargs = "*" in positional
    return [n for n in positional if n != "*"], keyword, varargs


def _doc_overloads(name, doc):
    """The signature lines of a builtin's docstring: the first line, ``.. function::`` lines,
    and lines ``name(...) -> ...``."""
    lines = doc.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    head = re.compile(
        r"^(?:\.\. function:: )?(?:torch\.)?(?:(?:nn\.functional|linalg|special)\.)?"
        + re.escape(name)
        + r"\("
    )
    out = []
    for line in (line.strip() for line in lines):
        m = head.match(line)
        if not m:
            continue
        depth, end = 0, None
        for i in range(m.end() - 1, len(line)):
            depth += line[i] == "("
            depth -= line[i] == ")"
            if depth == 0:
                end = i
                break
        if end is None:
            continue
        rest = line[end + 1 :].strip()
        if line == first or line.startswith(".. function::") or rest.startswith("->"):
            parsed = _parse(line[m.end() : end], typed=False)
            if parsed:
                out.append(parsed)
    return out


class _Bogus:
    pass


def _refusal(fn, *args, **kwargs):
    """The TypeError message torch's argument parser gives for a call it refuses ("" if none:
    the call must not get past the parser)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    except Exception:
        return ""
    return ""


def _parser_overloads(fn):
    """Every overload the argument parser lists ("expected one of: * (Tensor input, ...)"):
    what a builtin with several overloads really accepts."""
    message = _refusal(fn, *[_Bogus()] * 12, __bogus__=_Bogus())
    out = []
    for line in message.splitlines():
        line = line.strip()
        if line.startswith("* (") and line.endswith(")"):
            parsed = _parse(line[3:-1], typed=True)
            if parsed:
                out.append(parsed)
    return out


def _required(fn):
    """The required argument names the parser reports for a call without arguments."""
    m = re.search(r"missing \d+ required positional arguments?: (.*)$", _refusal(fn))
    return [n.strip(' "') for n in m.group(1).split(",")] if m else None


def torch_overloads(fn, name):
    """torch's overloads of `fn` as (positional-or-keyword names, keyword-only names, *args)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        kinds = [p.kind for p in sig.parameters.values()]
        P = inspect.Parameter
        if kinds != [P.VAR_POSITIONAL, P.VAR_KEYWORD]:  # a real signature, not a dispatcher
            return [
                (
                    [p.name for p in sig.parameters.values() if p.kind in _POSITIONAL],
                    [p.name for p in sig.parameters.values() if p.kind == P.KEYWORD_ONLY],
                    P.VAR_POSITIONAL in kinds,
                )
            ]
        return _doc_overloads(name, fn.__doc__ or "")
    listed = _parser_overloads(fn)
    if listed:
        return listed
    documented = _doc_overloads(name, fn.__doc__ or "")
    required = _required(fn)
    if required is not None:
        if len(documented) == 1:
            positional, keyword, varargs = documented[0]
            if positional[: len(required)] != required and len(required) <= len(positional):
                positional = required + positional[len(required) :]
            documented = [(positional, keyword, varargs)]
        elif not documented:
            documented = [(required, [], False)]
    return documented


def _takes_keywords(fn):
    """False for builtins that take no keywords (torch.from_numpy(ndarray)): their names are
    never used."""
    try:
        inspect.signature(fn)
        return True  # a Python function: its signature says
    except (TypeError, ValueError):
        return "takes no keyword arguments" not in _refusal(fn, __bogus__=_Bogus())


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _public(name):
    return name != "out" and not name.startswith("_")


# ---- the pairs -------------------------------------------------------------------------------
def _pairs():
    out = []
    for label, (tmod, gmod) in NAMESPACES.items():
        for name in sorted(dir(gmod)):
            if name.startswith("_") or not hasattr(tmod, name):
                continue
            g, t = getattr(gmod, name), getattr(tmod, name)
            if inspect.isclass(g) or inspect.ismodule(g) or not callable(g) or not callable(t):
                continue
            marks = []
            if (label, name) in BY_CALL:
                continue
            if (label, name) in OUTSIDE_OPS:
                marks.append(pytest.mark.xfail(strict=True, reason=OUTSIDE_OPS[label, name]))
            out.append(pytest.param(label, name, id=f"{label}.{name}", marks=marks))
    return out


PAIRS = _pairs()


def test_the_walk_finds_the_namespaces():
    labels = [p.values[0] for p in PAIRS]
    assert labels.count("torch") > 250 and labels.count("torch.nn.functional") > 100
    assert labels.count("torch.linalg") >= 10 and labels.count("torch.special") >= 10


def mismatches(label, name):
    """What in torch's overloads of label.name gradflow's signature lacks (empty: none)."""
    tmod, gmod = NAMESPACES[label]
    t, g = getattr(tmod, name), getattr(gmod, name)
    overloads = DOCUMENTED.get((label, name)) or torch_overloads(t, name)
    assert overloads, f"{label}.{name}: no signature found for torch's function"
    params = inspect.signature(g).parameters.values()
    g_positional = [p.name for p in params if p.kind in _POSITIONAL and _public(p.name)]
    # zeros(*size) and rand(*size) also take torch's size= (checked by test_creation_keyword_forms)
    g_positional += [p.name for p in params if p.kind == p.VAR_POSITIONAL and p.name == "size"]
    g_names = {p.name for p in params}
    g_varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    by_keyword = _takes_keywords(t)
    dispatched = DISPATCHED.get((label, name), ())
    problems = []
    for positional, keyword, varargs in overloads:
        if "self" in positional:  # pow(self, exponent): a Number base, gradflow's input
            continue
        positional = [n for n in positional if _public(n)]
        keyword = [n for n in keyword if n not in TORCH_ONLY_KEYWORDS and _public(n)]
        if varargs and not g_varargs:
            problems.append(f"torch takes *args ({positional}, *args)")
        if not by_keyword:  # torch.from_numpy(ndarray): the names are never used
            n = len(positional)
            if len(g_positional) < n and not g_varargs:
                problems.append(f"torch takes {n} positional arguments")
            continue
        missing = [n for n in positional + keyword if n not in g_names]
        if missing:
            problems.append(f"lacks {missing} (torch's overload {positional}, *, {keyword})")
        elif len(g_positional) < len(positional) or any(
            theirs != ours and theirs not in dispatched
            for theirs, ours in zip(positional, g_positional)
        ):
            problems.append(
                f"positional order {g_positional[: len(positional)]}, torch's {positional}"
            )
    return problems


@pytest.mark.parametrize(("label", "name"), PAIRS)
def test_torch_argument_names_and_order(label, name):
    assert mismatches(label, name) == [], inspect.signature(getattr(NAMESPACES[label][1], name))


# ---- calls in torch's keywords and positional order, under gradflow ---------------------------
def _same(a, b):
    numpy.testing.assert_allclose(numpy.asarray(a.tolist()), numpy.asarray(b.tolist()), 1e-6)


def test_losses_take_torchs_positional_order():
    logits = gradflow.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    target = gradflow.tensor([0, 2])
    summed = F.cross_entropy(logits, target, reduction="sum")
    _same(F.cross_entropy(logits, target, None, None, -100, None, "sum"), summed)
    _same(F.cross_entropy(logits, target, None, None, -100, None, "mean", 0.1),
          F.cross_entropy(logits, target, label_smoothing=0.1))  # fmt: skip
    logp = F.log_softmax(logits, 1)
    _same(F.nll_loss(logp, target, None, None, 2, None, "none"),
          F.nll_loss(logp, target, ignore_index=2, reduction="none"))  # fmt: skip
    p, y = gradflow.tensor([0.2, 0.9]), gradflow.tensor([0.0, 1.0])
    _same(F.binary_cross_entropy(p, y, None, None, None, "sum"),
          F.binary_cross_entropy(p, y, reduction="sum"))  # fmt: skip
    pw = gradflow.tensor([2.0])
    _same(F.binary_cross_entropy_with_logits(p, y, None, None, None, "sum", pw),
          F.binary_cross_entropy_with_logits(p, y, reduction="sum", pos_weight=pw))  # fmt: skip
    for loss in (F.mse_loss, F.l1_loss):
        _same(loss(p, y, None, None, "sum"), loss(p, y, reduction="sum"))
        w = gradflow.tensor([1.0, 3.0])
        _same(loss(p, y, None, None, "sum", w), loss(p, y, reduction="sum", weight=w))


def test_legacy_size_average_in_its_torch_position_warns_and_reduces():
    x, y = gradflow.tensor([1.0, 3.0]), gradflow.tensor([0.0, 0.0])
    with pytest.warns(UserWarning, match="size_average and reduce"):
        out = F.mse_loss(x, y, False)  # size_average=False: the sum, as in torch
    assert out.item() == 10.0


def test_losses_match_torch_called_positionally():
    logits = numpy.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    target = numpy.array([0, 2])
    args = (None, None, -100, None, "sum", 0.05)
    ours = F.cross_entropy(gradflow.tensor(logits), gradflow.tensor(target), *args)
    theirs = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target), *args)
    assert ours.item() == pytest.approx(theirs.item())


def test_keyword_calls_in_torchs_names():
    t = gradflow.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    index = gradflow.tensor([[0, 0], [1, 0]])
    assert gradflow.gather(input=t, dim=1, index=index).tolist() == [[1.0, 1.0], [5.0, 4.0]]
    assert gradflow.sum(input=t, dim=0).tolist() == [5.0, 7.0, 9.0]
    assert gradflow.sum(t, dtype=gradflow.float64).dtype == gradflow.float64
    assert gradflow.cumsum(input=t, dim=1, dtype=gradflow.float64).dtype == gradflow.float64
    assert F.pad(input=t, pad=(1, 1)).shape == (2, 5)
    assert F.pad(t, (1, 0), "constant", 7.0)[0, 0].item() == 7.0
    assert F.sigmoid(input=t).shape == F.tanh(input=t).shape == (2, 3)
    assert [p.shape for p in gradflow.split(tensor=t, split_size_or_sections=2, dim=1)] == [
        (2, 2),
        (2, 1),
    ]
    assert gradflow.add(input=t, other=1.0, alpha=2)[0, 0].item() == 3.0
    assert gradflow.pow(input=t, exponent=2)[0, 1].item() == 4.0
    assert gradflow.where(t > 2, input=t, other=0.0).tolist()[0] == [0.0, 0.0, 3.0]
    assert gradflow.dot(input=t[0], tensor=t[1]).item() == 32.0
    assert gradflow.tile(input=t, dims=(2,)).shape == (2, 6)
    assert gradflow.broadcast_to(input=t[0], size=(2, 3)).shape == (2, 3)
    assert gradflow.swapaxes(input=t, axis0=0, axis1=1).shape == (3, 2)
    assert gradflow.concatenate([t, t], axis=1).shape == (2, 6)
    assert F.one_hot(input=gradflow.tensor([1, 0]), num_classes=3).tolist()[0] == [0, 1, 0]
    assert gradflow.linalg.norm(input=t).item() == pytest.approx(91**0.5)
    assert gradflow.special.erf(input=gradflow.tensor([0.0])).item() == 0.0


def test_overloads_told_apart_by_type():
    a, b = gradflow.tensor([1.0, 5.0]), gradflow.tensor([3.0, 2.0])
    assert gradflow.max(a, b).tolist() == gradflow.max(a, other=b).tolist() == [3.0, 5.0]
    assert gradflow.min(input=a, other=b).tolist() == [1.0, 2.0]
    x = numpy.array([[1.0, 2.0], [3.0, 5.0]])
    for op in ("std", "var"):
        for args in ((False,), (True,), (1,), (1, False, True)):
            ours = getattr(gradflow, op)(gradflow.tensor(x), *args)
            theirs = getattr(torch, op)(torch.tensor(x), *args)
            _same(ours, theirs)
        ours = getattr(gradflow, op + "_mean")(gradflow.tensor(x), False)
        theirs = getattr(torch, op + "_mean")(torch.tensor(x), False)
        _same(ours[0], theirs[0])
        _same(ours[1], theirs[1])
    r = gradflow.arange(6)
    assert [p.tolist() for p in gradflow.tensor_split(r, sections=2)] == [[0, 1, 2], [3, 4, 5]]
    assert [p.shape[0] for p in gradflow.tensor_split(r, indices=[1, 4])] == [1, 3, 2]
    assert len(gradflow.hsplit(r, sections=3)) == 3
    with pytest.raises(TypeError, match="takes one of"):
        gradflow.tensor_split(r, 2, sections=2)
    counts = gradflow.tensor([1, 2])
    assert gradflow.repeat_interleave(repeats=counts).tolist() == [0, 1, 1]
    assert gradflow.repeat_interleave(counts).tolist() == [0, 1, 1]


def test_torch_only_arguments_refused_or_honoured():
    t = gradflow.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(NotImplementedError, match="sparse_grad"):
        gradflow.gather(t, 0, gradflow.tensor([[0, 1]]), sparse_grad=True)
    half = t.to(gradflow.float16)
    assert gradflow.mm(half, half, gradflow.float32).dtype == gradflow.float32
    assert gradflow.mm(half, half, out_dtype=gradflow.float32).tolist() == [
        [7.0, 10.0],
        [15.0, 22.0],
    ]
    assert gradflow.clone(t, memory_format=gradflow.preserve_format).tolist() == t.tolist()
    assert gradflow.cholesky(gradflow.eye(2), True).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_compile_takes_torchs_keywords():
    def model(x):
        return x * 2

    options = dict(fullgraph=True, dynamic=None, backend="inductor", mode="reduce-overhead",
                   options=None, disable=False)  # fmt: skip
    assert gradflow.compile(model, **options) is model
    assert gradflow.compile(**options)(model) is model


@pytest.mark.parametrize(
    "call",
    ["arange(end=3)", "arange(start=1, end=3)", "randint(high=5, size=(2,))",
     "zeros(size=(2, 3))", "ones(size=(2, 3))", "empty(size=(2, 3))", "rand(size=(2, 3))",
     "randn(size=[2, 3])", "randint_like(gradflow.ones(2, 3), 4)",
     "randint_like(input=gradflow.ones(2, 3), low=1, high=4)", "zeros_like(input=gradflow.ones(2))",
     "rand_like(input=gradflow.ones(2), dtype=gradflow.float64)"],
)  # fmt: skip
def test_creation_keyword_forms(call):
    assert eval(f"gradflow.{call}").ndim >= 1  # torch accepts each


def test_creation_keyword_forms_refuse_ambiguity():
    with pytest.raises(TypeError, match="both positionally and as size="):
        gradflow.zeros(2, size=(2, 3))
    with pytest.raises(TypeError, match="missing its end"):
        gradflow.arange()
    with pytest.raises(TypeError, match="missing its high"):
        gradflow.randint(size=(2,))
    drawn = gradflow.randint_like(gradflow.zeros(100), 1, 3)
    assert drawn.dtype == gradflow.float32 and set(drawn.tolist()) <= {1.0, 2.0}


def test_tensor_methods_still_call_positionally():
    t = gradflow.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.sum(0).tolist() == [4.0, 6.0]
    assert t.std(0, False).tolist() == [1.0, 1.0]
    assert t.max(1).values.tolist() == [2.0, 4.0]
    assert t.gather(1, gradflow.tensor([[1], [0]])).tolist() == [[2.0], [3.0]]
    assert t.split(1, 0)[1].tolist() == [[3.0, 4.0]]
    assert t.clamp(2.0, 3.0).tolist() == [[2.0, 2.0], [3.0, 3.0]]
