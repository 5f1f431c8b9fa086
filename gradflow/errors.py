"""The errors page: every exception gradflow raises, when, what it tells you, with an example.

gradflow's own exceptions are importable from here (``from gradflow.errors import
CheckpointError``); each subclasses a built-in one, so ``except ValueError`` also catches a
CheckpointError. Everything else gradflow raises is a built-in exception with a message that
names the op or argument, the shapes, dtypes or devices involved, and what to do instead.
tests/test_errors_page.py checks that every exception class defined in gradflow is listed and
re-exported here, and that the example messages below still match what the code raises.

gradflow's exceptions
---------------------

CheckpointError (ValueError), defined in gradflow.serialization
    When: ``gradflow.save`` meets an object it can't store (a lambda, a set, an object array,
    a cycle, containers nested more than 100 deep, an int of more than 4,300 digits; a whole
    Module or Optimizer, which torch.save would pickle: the message shows the state_dict
    lines to use instead) or a
    path that is a device, FIFO or socket, or a symlink to one (it replaces only regular
    files, and refuses before writing anything); ``gradflow.load`` gets a file that is
    missing, not a regular file (a directory, a device such as /dev/zero, a FIFO: refused
    unopened), not a zip, truncated, corrupt (a CRC mismatch), compressed, encrypted, holding
    an entry twice or one its manifest doesn't name, whose manifest is malformed (naming one
    array twice with different dtypes or shapes) or disagrees with an array's dtype, shape or
    size, that holds a pickle (refused, never unpickled; a file torch.save wrote is named as
    such, with how to convert it to safetensors), or that has a cuda tensor while
    CUDA is not available.
    Tells you: the file (and where a symlink leads), the entry, and the key path inside the
    saved object; what it found and what it expected; for a cuda checkpoint, to pass
    ``map_location='cpu'``.
    Example: ``run.ckpt: array arrays/0.npy has dtype float32 and shape [2, 3] but
    checkpoint.json says dtype float32 and shape [3, 2] (at 'model.weight')``

CudaUnavailableError (RuntimeError), defined in gradflow.backend
    When: a tensor, module or op is asked for ``cuda`` (``device="cuda"``, ``.cuda()``,
    ``gradflow.cuda.synchronize()``) where CuPy can't be imported or sees no such GPU.
    Tells you: the package to install for your CUDA version, CuPy's own import error, and to
    use ``device='cpu'`` or ``'auto'``.
    Example: ``CUDA was requested but CuPy could not be imported; install CuPy for your CUDA
    toolkit: pip install 'gradflow[cuda12]' (CUDA 12.x) or pip install 'gradflow[cuda13]'
    (CUDA 13.x). Original error: ModuleNotFoundError("No module named 'cupy'"). Use
    device='cpu' (or 'auto' to pick cuda only when it is available).``

DatasetFileError (ValueError), defined in gradflow.data.mnist
    When: MNIST or Fashion-MNIST files are missing, not IDX files, truncated, of the wrong
    kind (images where labels belong), don't belong together (as many images as labels), or
    can't be downloaded (every mirror failed, or the file's checksum did not match).
    Tells you: the file, what is wrong with it, where it looked, and how to get the files.
    Example: ``MNIST: train-images-idx3-ubyte[.gz] not found in data or data/MNIST/raw. ...
    pass download=True to fetch them into data, or root= a directory that has them.``

TrainingError (ValueError), defined in gradflow.training
    When: ``gradflow train`` (or ``gradflow.training.train``) gets an option it can't use: an
    unknown model, optimizer or ``--data``, ``--epochs``, ``--batch-size`` or
    ``--limit-batches`` below 1, an ``--lr`` that is not a positive finite number, a negative
    ``--seed``, an unknown ``--device``, a ``--checkpoint`` or ``--plot`` path that can't be
    written (a directory, a device or FIFO, a read-only file or directory; checked before
    training), ``--resume`` without a checkpoint, from one trained with another model, data
    or optimizer, or from one whose layout, weights, history or rng state is malformed (named
    with the checkpoint), ``--plot`` without matplotlib, or a checkpoint already at the last
    epoch.
    Tells you: the option, the value, and the values it accepts.
    Example: ``--epochs must be at least 1, got 0``

AnomalyError (RuntimeError), defined in gradflow.autograd.anomaly
    When: anomaly mode is on (``with gradflow.autograd.detect_anomaly():``) and an op's
    forward output or a node's backward gradient holds NaN or Inf.
    Tells you: the op ("Log" in forward, "SqrtBackward" in backward), which output or input,
    its shape and dtype, and the lines of your code that ran the op in forward; the
    attributes ``op``, ``phase``, ``index`` and ``created_at`` hold the same.
    Example: ``Function 'SqrtBackward' returned inf values in its gradient for input 0
    (shape (1,), dtype float32). Sqrt was created in forward at (most recent call last): ...``

DtypeMismatchError (TypeError), defined in gradflow.autograd.function
    When: an op other than elementwise arithmetic (matmul, linear, conv, a norm layer, ...)
    gets float tensors of two dtypes; add, mul and the other elementwise ops promote to the
    wider dtype instead, as PyTorch does. A TypeError (gradflow's kind for dtypes) and a
    RuntimeError (PyTorch's), so either ``except`` catches it.
    Tells you: the op, every operand's shape, dtype and device, and how to convert.
    Example: see TypeError above.

GradcheckError (AssertionError), defined in gradflow.testing.gradcheck
    When: ``gradflow.testing.gradcheck`` finds autograd's gradient differing from float64
    finite differences (inputs that are not float64 get a TypeError instead).
    Tells you: the directional derivatives or the worst Jacobian element, both values, the
    difference and the tolerances.
    Example: ``gradcheck: directional derivative mismatch: analytic 0.9465819231 vs numeric
    0.6310546153 (difference 0.316, atol=1e-05, rtol=0.001)``

ModelError (ValueError), defined in gradflow.bench.user_model
    When: ``gradflow bench --model`` or ``gradflow.bench.model`` gets a spec that is not
    ``module:callable``, a module or file that can't be imported (any error while importing
    it), a factory that needs arguments or raises, a bad ``--input-shape``, loss or dtype, a
    model or torch twin whose first forward raises, a model with no parameter that requires
    grad, or an input too large for memory (checked before it is drawn).
    Tells you: the phase (importing, calling the factory, the first forward), the user code's
    own error, and what to give instead.
    Example: ``model spec 'foo': expected module:callable, e.g. mynets:build or
    path/to/nets.py:Net``

ModelTypeError (ModelError), defined in gradflow.bench.user_model
    When: the same commands get an object of the wrong type: a factory that does not return
    a Module, a model whose output is not a tensor (or a tuple starting with one). Also a
    TypeError.
    Tells you: what was returned and what was expected.
    Example: ``model: '<lambda>' returned an object of type int, not a gradflow.nn.Module``

PlotUnavailableError (RuntimeError), defined in gradflow.plotting
    When: ``gradflow bench --plot`` runs without matplotlib (checked before the run).
    Tells you: the package to install.
    Example: ``--plot needs matplotlib: pip install 'gradflow[plot]' (or pip install
    matplotlib)``

StateDictError (RuntimeError), defined in gradflow.nn.state_dict
    When: ``Module.load_state_dict`` (strict, the default) gets missing or unexpected keys,
    or (strict or not) a value whose shape differs from the parameter's or buffer's; nothing
    is loaded then. Also a KeyError and a ValueError, the types raised for these before.
    Tells you: every missing and unexpected key and ``strict=False`` to load the rest, or the
    key and both shapes.
    Example: ``error loading state_dict into Sequential: missing keys: 5.bias. Pass
    strict=False to load the keys that match``

Built-in exceptions
-------------------

ValueError: shapes and values
    When: operands that don't broadcast, matmul or layer inputs of the wrong size, a reshape
    to the wrong number of elements, an unknown device string, an invalid hyperparameter
    (a negative learning rate, betas outside [0, 1)), a ``batch_size`` below 1,
    ``Module.load_state_dict`` with a value whose shape differs from the parameter's, an
    optimizer state whose ``step`` or tensor shapes are wrong, binary cross-entropy targets
    outside [0, 1] (on the CPU; on cuda they give NaN, as a device check would cost a sync),
    samples of different shapes in one batch (naming the index and both shapes), and
    ``randperm`` of a negative ``n``.
    Tells you: the op or layer, the shapes (or the value) and what was expected.
    Examples: ``add: operands could not be broadcast together with shapes (2,3) (4,) ...``;
    ``size mismatch for '5.bias': the checkpoint has shape (3,), the model has (10,)``

TypeError: dtypes and argument types
    When: an op other than elementwise arithmetic mixes float32 and float64 tensors (add,
    mul, ... promote to the wider dtype as PyTorch does; matmul, conv, ... refuse, and that
    error is also a RuntimeError, PyTorch's type),
    a dtype gradflow doesn't support, an argument of the wrong type (a ``batch_size`` that
    is not an int, a state_dict that is not a dict, or one whose value is not a Tensor),
    gradcheck inputs that are not float64.
    Tells you: the op, every operand's shape, dtype and device, and how to convert.
    Example: ``matmul: expected floating tensors of one dtype, got Tensor(shape=(2,),
    dtype=float32, device=cpu), Tensor(shape=(2,), dtype=float64, device=cpu); convert one
    with .float() or .double() (as in PyTorch, only elementwise arithmetic promotes float32
    and float64)``

RuntimeError: misuse of the graph, devices
    When: a second backward through a graph whose saved arrays were freed, backward from a
    tensor that doesn't require grad or from a non-scalar without ``gradient=``, an in-place
    write into a leaf that requires grad, backward through an op whose saved array (or any
    view or ``detach()`` of its storage) was written in place afterwards ("modified by an
    inplace operation", naming the op), a recorded in-place write into a view (write through
    the tensor that owns the memory), a view taken before such a write used after it, an
    in-place write into an ``expand()``ed view, a user Function's backward returning a
    gradient of the wrong shape or a hook returning one, tensors on different devices in one
    op, ``numpy()`` on a tensor that requires grad, the truth value of a many-element tensor,
    a non-finite norm in ``clip_grad_norm_(error_if_nonfinite=True)``, a negative layer size or
    conv geometry (``Linear(-1, 2)``, ``Conv2d(1, 1, 0)``: PyTorch's type), a factory size no
    array can hold (``zeros(2**31, 2**31, 4)``), ``eye(-1)``.
    Tells you: what happened and the fix (``retain_graph=True``, ``detach()``, ``no_grad()``,
    ``.to(device)``), naming both devices on a mismatch.
    Example: ``Trying to backward through Sum a second time, but its saved arrays were freed
    after the first backward. Pass retain_graph=True to the first backward() (or
    gradflow.grad()) if you need to backward through the graph again.``

IndexError: indices and dims out of range
    When: an index past a dim's size, a ``dim=`` argument out of range, a class target
    outside ``[0, classes)`` in cross_entropy or nll_loss, an embedding index past the table.
    Tells you: the index, the dim and its size, or the valid range.
    Example: ``sum: dim 4 is out of range for a tensor with 1 dims (expected in [-1, 0])``

ZeroDivisionError: integer division by zero
    When: ``//`` or ``%`` (``floor_divide``, ``remainder``) of integer tensors with a zero
    divisor (NumPy would return 0 silently; PyTorch raises). On cuda a tensor divisor costs
    one host sync for the check.
    Example: ``floor_divide: integer division by zero (the divisor is 0); divide floats
    (x.float()) for inf/nan instead``

MemoryError: out of memory, named
    When: a factory (``zeros``, ``ones``, ``empty``, ``full``) or a conv whose workspace
    (im2col, bounded by ``gradflow.ops.conv.set_workspace_budget``, 256 MiB by default) can't
    be allocated, or a single output row of a conv that exceeds the budget.
    Tells you: the op, the shapes and dtype, and the bytes asked; NumPy's error is the cause.
    Example: ``ones: out of memory allocating a tensor of shape (1048576, 1048576, 1024) and
    dtype float32 (4194304.00 GiB)``

KeyError: names
    When: ``Module.load_state_dict`` (strict, the default) with missing or unexpected keys; a
    parameter, buffer or submodule registered under an empty or dotted name; a learning-rate
    scheduler resumed with ``last_epoch`` before the optimizer's state was loaded.
    Tells you: every missing and unexpected key, and ``strict=False`` to load the rest.
    Example: ``error loading state_dict into Sequential: missing keys: 5.bias. Pass
    strict=False to load the keys that match``

NotImplementedError: what gradflow doesn't do (yet)
    When: ``gradflow.grad(is_grads_batched=True)``, embedding ``max_norm`` or
    ``sparse=True``, conv ``padding_mode`` other than 'zeros', a Module or Function subclass
    without ``forward``/``backward``, random-state access on cuda generators, an optimizer
    built with ``differentiable=True``.
    Tells you: what is not supported and what to do instead.
    Example: ``grad: is_grads_batched=True is not supported; loop over the batch of
    grad_outputs instead``

AttributeError: modules
    When: a module attribute that doesn't exist, or a parameter or submodule assigned before
    ``super().__init__()`` ran.
    Example: ``cannot assign parameters before Module.__init__() call``

FileNotFoundError, IsADirectoryError, PermissionError and other OSErrors: files
    When: ``gradflow.save`` into a directory that doesn't exist, to a path that is a
    directory (or a symlink to one), over a read-only file (refused as ``open()`` would refuse
    it) or into a directory it can't write (it writes a temporary file there and renames it);
    a write that fails (a full disk); the CUDA kernel sources missing from an installation.
    Tells you: the path you gave (and where a symlink leads), never the temporary file; a
    failed write's error has that path as its ``filename``.
    Example: ``can't save to runs/x.ckpt: directory runs does not exist``

Command line
    ``gradflow train`` and ``gradflow bench`` print ``gradflow <command>: error: <message>``
    for CheckpointError, CudaUnavailableError, DatasetFileError, TrainingError,
    PlotUnavailableError and ModelError, and exit with status 2, as argparse does for a bad
    option (with its usage message).
"""

from gradflow.autograd.anomaly import AnomalyError
from gradflow.autograd.function import DtypeMismatchError
from gradflow.backend import CudaUnavailableError
from gradflow.bench.user_model import ModelError, ModelTypeError
from gradflow.data.mnist import DatasetFileError
from gradflow.nn.state_dict import StateDictError
from gradflow.plotting import PlotUnavailableError
from gradflow.serialization import CheckpointError
from gradflow.testing.gradcheck import GradcheckError
from gradflow.training import TrainingError

__all__ = [
    "AnomalyError",
    "CheckpointError",
    "CudaUnavailableError",
    "DatasetFileError",
    "DtypeMismatchError",
    "GradcheckError",
    "ModelError",
    "ModelTypeError",
    "PlotUnavailableError",
    "StateDictError",
    "TrainingError",
]
