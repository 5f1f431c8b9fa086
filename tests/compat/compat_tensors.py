"""Corpus snippets: tensors as PyTorch users make, convert, index, change and print them."""

import numpy
from compat_corpus import snippet


@snippet
def creation_functions(torch):
    return [
        torch.tensor([[1, 2], [3, 4]], dtype=torch.float32),
        torch.zeros(2, 3),
        torch.ones((2, 2), dtype=torch.long),
        torch.full((2,), 7.5),
        torch.arange(5),
        torch.arange(0, 1, 0.25),
        torch.linspace(0, 1, steps=5),
        torch.eye(3),
        torch.empty(4, 2).shape,
    ]


@snippet
def dtype_inference(torch):
    return [
        torch.tensor([1, 2]).dtype,
        torch.tensor([1.0, 2]).dtype,
        torch.tensor(True).dtype,
        torch.tensor(3).dtype,
        torch.tensor([1, 2.5]).dtype,
        torch.tensor(numpy.array([1.0])).dtype,
        torch.arange(3.0).dtype,
        torch.get_default_dtype(),
    ]


@snippet
def dtype_aliases(torch):
    x = torch.arange(4)
    return [
        torch.float is torch.float32,
        torch.long is torch.int64,
        torch.double is torch.float64,
        x.to(torch.float).dtype,
        x.float().dtype,
        x.double().dtype,
        x.long().dtype,
        x.int().dtype,
        x.bool().dtype,
        x.half().dtype,
        x.type(torch.int32).dtype,
        x.to(dtype=torch.float64).dtype,
        x.is_floating_point(),
        x.float().is_floating_point(),
    ]


@snippet
def legacy_constructors(torch):
    return [
        torch.Tensor(3).shape,
        torch.Tensor(2, 3).shape,
        torch.Tensor([1, 2]),
        torch.LongTensor([1, 2, 3]),
        torch.FloatTensor([[1, 2]]),
        torch.Tensor([[1, 2]]).dtype,
        torch.BoolTensor([True, False]).dtype,
    ]


@snippet
def new_methods(torch):
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    return [
        x.new_zeros(2, 3),
        x.new_ones((2,)),
        x.new_full((2,), 3),
        x.new_tensor([4, 5]),
        x.new_empty(3).shape,
        x.new_zeros(1).dtype,
    ]


@snippet
def like_functions(torch):
    x = torch.arange(6).reshape(2, 3)
    return [
        torch.zeros_like(x),
        torch.ones_like(x, dtype=torch.float32),
        torch.full_like(x, 9),
        torch.empty_like(x).shape,
        torch.rand_like(x.float()).shape,
        torch.randn_like(x, dtype=torch.float64).dtype,
    ]


@snippet
def item_and_tolist(torch):
    x = torch.tensor([[1.5, 2.5], [3.0, 4.0]])
    i = torch.tensor([3, 4])
    return [x.sum().item(), i.sum().item(), x.tolist(), i.tolist(), x[0, 1].item(), float(x[1, 1]),
            int(i[0]), bool(i[0] > 2), x.numel(), len(x)]  # fmt: skip


@snippet
def string_formatting(torch):
    loss = torch.tensor(0.123456)
    acc = torch.tensor([1.0, 0.0, 1.0, 1.0]).mean()
    count = torch.tensor(7)
    return [
        f"{loss:.3f}",
        f"loss {loss.item():.4f} acc {acc * 100:.1f}%",
        "%.2f" % loss,  # noqa: UP031 (old code formats this way)
        "{:.2e}".format(loss),  # noqa: UP032
        f"{count}",
        f"{count:d}",
        f"{loss.item()}",
        str(count.item()),
    ]


@snippet
def data_attribute_updates(torch):
    w = torch.ones(3, requires_grad=True)
    (w * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    w.data -= 0.1 * w.grad.data
    w.data.clamp_(max=0.85)
    before = w.data.clone()
    w.data = torch.zeros(3)
    return [before, w, w.requires_grad, w.data.requires_grad, w.grad]


@snippet
def in_place_ops(torch):
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x.add_(1)
    x.mul_(2)
    x.sub_(torch.ones(3))
    x.div_(2)
    x.clamp_(0, 4)
    x += 1
    x *= 2
    x[0] = 7
    x[1, 2] = -1
    y = torch.empty(3).fill_(5)
    z = torch.ones(2).zero_()
    return [x, y, z]


@snippet
def basic_indexing(torch):
    x = torch.arange(12).reshape(3, 4)
    return [
        x[0],
        x[:, 1],
        x[1:3, ::2],
        x[..., -1],
        x[None].shape,
        x[:, None, :].shape,
        x[[0, 2]],
        x[torch.tensor([2, 0])],
        x[x > 5],
        x[1, [0, 3]],
        x[-1, -1],
    ]


@snippet
def mask_assignment(torch):
    x = torch.tensor([[-1.0, 2.0], [3.0, -4.0]])
    x[x < 0] = 0
    y = torch.arange(5)
    y[y % 2 == 0] = -1
    z = torch.zeros(3, 3)
    z[:, 1] = torch.tensor([1.0, 2.0, 3.0])
    z[torch.arange(3), torch.arange(3)] = 9
    return [x, y, z]


@snippet
def max_min_with_dim(torch):
    x = torch.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    values, indices = x.max(dim=1)
    _, predicted = torch.max(x, 1)
    result = x.min(0)
    return [values, indices, predicted, result.values, result.indices, x.max(),
            x.argmax(dim=1), x.argmax(), torch.argmin(x, dim=0), x.max(1)[1]]  # fmt: skip


@snippet
def reductions(torch):
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    return [
        x.sum(),
        x.sum(dim=0),
        x.sum(1, keepdim=True),
        x.mean(),
        x.mean(dim=-1),
        x.std(),
        x.var(dim=1, unbiased=False),
        x.prod(),
        x.cumsum(dim=1),
        torch.sum(x, dim=(0, 1)),
        x.norm(),
        x.abs().max().item(),
        torch.tensor([1, 2, 3]).sum().dtype,
        torch.tensor([True, False, True]).sum(),
    ]


@snippet
def shape_manipulation(torch):
    x = torch.arange(24).reshape(2, 3, 4)
    return [
        x.view(-1).shape,
        x.view(2, -1).shape,
        x.reshape(6, 4).shape,
        x.permute(2, 0, 1).shape,
        x.transpose(0, 1).shape,
        x.unsqueeze(0).shape,
        x.unsqueeze(-1).squeeze().shape,
        x.flatten(1).shape,
        torch.flatten(x).shape,
        x.contiguous().view(4, 6),
        x.size(),
        x.size(1),
        x.shape[-1],
        x.dim(),
        x.ndim,
    ]


@snippet
def cat_stack_split(torch):
    a, b = torch.ones(2, 3), torch.zeros(2, 3)
    return [
        torch.cat([a, b]).shape,
        torch.cat((a, b), dim=1).shape,
        torch.stack([a, b]).shape,
        torch.stack([a, b], dim=-1).shape,
        [t.shape for t in torch.arange(10).chunk(3)],
        [t.tolist() for t in torch.arange(10).split(4)],
        [t.shape for t in torch.split(a, [1, 2], dim=1)],
        torch.hstack([a, b]).shape,
        torch.vstack([a, b]).shape,
    ]


@snippet
def size_objects(torch):
    x = torch.zeros(2, 3)
    shape = x.shape
    return [
        shape == torch.Size([2, 3]),
        shape == (2, 3),
        isinstance(shape, tuple),
        tuple(shape),
        list(shape),
        shape.numel(),
        torch.Size([4, 5]),
        torch.zeros(torch.Size([1, 2])).shape,
        x.new_zeros(shape).shape,
        [*shape],
    ]


@snippet
def type_checks(torch):
    x = torch.ones(2)
    return [
        torch.is_tensor(x),
        torch.is_tensor([1.0]),
        isinstance(x, torch.Tensor),
        torch.is_floating_point(x),
        type(x).__name__,
        x.is_leaf,
        x.requires_grad,
    ]


@snippet
def numpy_interop(torch):
    a = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    t = torch.from_numpy(a)
    u = torch.as_tensor(a, dtype=torch.float64)
    b = t.numpy()
    c = torch.tensor([1.0, 2.0]).detach().cpu().numpy()
    return [t, u, b.dtype.name, b.shape, c.tolist(), torch.from_numpy(numpy.array([1, 2])).dtype]


@snippet
def comparisons(torch):
    a = torch.tensor([1.0, 2.0, 3.0])
    b = torch.tensor([1.0, 2.5, 3.0])
    return [
        a == b,
        (a == b).all().item(),
        (a != b).any().item(),
        a.eq(b).sum().item(),
        torch.equal(a, a.clone()),
        torch.allclose(a, b, atol=0.6),
        a > 1.5,
        a.ge(2),
        a.lt(b),
        torch.isclose(a, b),
        (a >= 2) & (b <= 3),
        ~(a > 2),
    ]


@snippet
def where_and_clamp(torch):
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0])
    return [
        torch.where(x > 0, x, torch.zeros_like(x)),
        torch.where(x > 0, x, 0.0),
        x.clamp(min=0),
        x.clamp(-1, 1),
        torch.clamp(x, max=1.0),
        torch.clip(x, -1, 2),
        x.relu(),
        x.abs().sqrt(),
        x.sign(),
    ]


@snippet
def matmul_forms(torch):
    a = torch.arange(6.0).reshape(2, 3)
    b = torch.arange(12.0).reshape(3, 4)
    batch = torch.arange(24.0).reshape(2, 3, 4)
    return [
        a @ b,
        torch.mm(a, b),
        torch.matmul(a, b),
        a.matmul(b),
        torch.bmm(batch, batch.transpose(1, 2)),
        a.t(),
        a.T,
        torch.dot(a[0], a[1]),
        a @ torch.ones(3),
        torch.einsum("ij,jk->ik", a, b),
        torch.outer(a[0], a[1]),
    ]


@snippet
def elementwise_math(torch):
    x = torch.tensor([0.5, 1.0, 2.0])
    return [
        torch.exp(x),
        torch.log(x),
        x.log2(),
        torch.sqrt(x),
        x.pow(2),
        x**3,
        2**x,
        torch.sigmoid(x),
        torch.tanh(x),
        torch.softmax(x, dim=0),
        x.softmax(-1),
        torch.log_softmax(x, dim=0),
        torch.sin(x) + torch.cos(x),
        x.reciprocal(),
        torch.round(x * 1.3),
        torch.floor(x * 1.3),
        x.ceil(),
        torch.rsqrt(x),
        torch.maximum(x, torch.ones(3)),
        torch.minimum(x, torch.ones(3)),
    ]


@snippet
def promotion_and_division(torch):
    i = torch.tensor([5, 7, -3])
    return [
        (i * 2.5).dtype,
        (i / 2).dtype,
        i / 2,
        i // 2,
        i % 2,
        torch.div(i, 2, rounding_mode="floor"),
        torch.div(i, 2, rounding_mode="trunc"),
        (i + True).dtype,
        (torch.ones(2, dtype=torch.float64) + torch.ones(2)).dtype,
        (i.float() + 1).dtype,
        (torch.tensor([1, 2], dtype=torch.int32) + 1).dtype,
    ]


@snippet
def broadcasting(torch):
    x = torch.arange(6.0).reshape(2, 3)
    return [
        x + torch.tensor([1.0, 2.0, 3.0]),
        x * torch.tensor([[10.0], [100.0]]),
        x - x.mean(dim=0, keepdim=True),
        (x / x.sum(dim=1, keepdim=True)).sum(dim=1),
        torch.ones(2, 1, 3).expand(2, 4, 3).shape,
        x.expand_as(torch.zeros(4, 2, 3)).shape,
        torch.broadcast_tensors(torch.ones(2, 1), torch.ones(3))[0].shape,
    ]


@snippet
def seeding_is_reproducible(torch):
    torch.manual_seed(0)
    a = torch.rand(3)
    b = torch.randn(2, 2)
    torch.manual_seed(0)
    return [torch.equal(a, torch.rand(3)), torch.equal(b, torch.randn(2, 2))]


@snippet
def random_factories(torch):
    torch.manual_seed(1)
    ints = torch.randint(0, 10, (5,))
    perm = torch.randperm(6)
    g = torch.Generator().manual_seed(3)
    return [
        torch.rand(2, 3).shape,
        torch.randn(4).dtype,
        ints.dtype,
        bool(((ints >= 0) & (ints < 10)).all()),
        perm.sort().values,
        torch.randint(5, (3, 2)).shape,
        torch.rand(2, generator=g).shape,
        torch.empty(3).uniform_(-1, 1).shape,
        torch.empty(3).normal_(0, 0.1).shape,
        torch.bernoulli(torch.full((4,), 0.5)).shape,
        torch.multinomial(torch.tensor([0.0, 1.0, 0.0]), 1),
    ]


@snippet
def device_selection(torch):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x = torch.ones(2, device=device)
    y = torch.zeros(2).to(device)
    return [
        torch.cuda.is_available(),
        torch.cuda.device_count(),
        str(device),
        x.device.type,
        y.device == x.device,
        x.cpu().device,
        x.is_cuda,
        torch.device("cpu") == torch.device("cpu"),
        torch.device("cuda:1").index,
    ]


@snippet
def backends_flags(torch):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return [torch.backends.cudnn.deterministic, torch.backends.mps.is_available()]


@snippet
def accelerator_api(torch):
    device = (
        torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
    )
    model = torch.nn.Linear(2, 1).to(device)
    return [device, next(model.parameters()).device.type]


@snippet
def autograd_variable(torch):
    x = torch.autograd.Variable(torch.tensor([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    return [x.grad, isinstance(x, torch.Tensor), x.data]


@snippet
def autograd_basics(torch):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.ones(3).requires_grad_()
    y = (x * w).pow(2).sum()
    y.backward()
    grads = [x.grad.clone(), w.grad.clone()]
    x.grad.zero_()
    z = (x**3).mean()
    (gx,) = torch.autograd.grad(z, x)
    return [*grads, gx, y.requires_grad, y.grad_fn is not None, x.grad_fn is None,
            x.detach().requires_grad, y.is_leaf]  # fmt: skip


@snippet
def grad_mode_contexts(torch):
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        a = x * 2
    with torch.inference_mode():
        b = x * 2
    with torch.set_grad_enabled(False):
        c = x * 2
    with torch.enable_grad():
        d = x * 2

    @torch.no_grad()
    def predict(t):
        return t * 3

    return [a.requires_grad, b.requires_grad, c.requires_grad, d.requires_grad,
            predict(x).requires_grad, torch.is_grad_enabled()]  # fmt: skip


@snippet
def manual_sgd_update(torch):
    x = torch.linspace(-1, 1, 20).unsqueeze(1)
    y = 3 * x + 0.5
    w = torch.zeros(1, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(50):
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
            w.grad.zero_()
            b.grad.zero_()
    return [w, b, loss.item()]


@snippet
def sort_topk_unique(torch):
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0])
    values, indices = x.sort(descending=True)
    top = torch.topk(x, 2)
    return [
        values,
        indices,
        top.values,
        top.indices,
        torch.argsort(x),
        torch.unique(torch.tensor([3, 1, 3, 2])),
        torch.sort(x).values,
        x.kthvalue(2).values,
    ]


@snippet
def view_as_type_as_expand_as(torch):
    x = torch.arange(6).reshape(2, 3)
    y = torch.zeros(3, 2, dtype=torch.float64)
    return [x.view_as(y).shape, x.type_as(y).dtype, x.reshape_as(y).shape, x[:1].expand_as(x)]


@snippet
def masked_fill_attention(torch):
    scores = torch.arange(9.0).reshape(3, 3)
    mask = torch.triu(torch.ones(3, 3), diagonal=1).bool()
    masked = scores.masked_fill(mask, float("-inf"))
    return [mask, torch.softmax(masked, dim=-1), scores.masked_fill(mask, -1e9).max(dim=1).values,
            torch.tril(scores)]  # fmt: skip


@snippet
def gather_scatter_one_hot(torch):
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    target = torch.tensor([1, 0])
    picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
    one_hot = torch.zeros(2, 3).scatter_(1, target.unsqueeze(1), 1.0)
    return [picked, one_hot, torch.nn.functional.one_hot(target, num_classes=3),
            torch.index_select(logits, 0, torch.tensor([1]))]  # fmt: skip


@snippet
def accuracy_computation(torch):
    outputs = torch.tensor([[0.1, 2.0], [1.5, 0.2], [0.3, 0.4], [2.0, 1.0]])
    labels = torch.tensor([1, 0, 0, 0])
    _, predicted = torch.max(outputs.data, 1)
    correct = (predicted == labels).sum().item()
    accuracy = (outputs.argmax(dim=1) == labels).float().mean().item()
    return [correct, accuracy, 100 * correct / labels.size(0), f"{100 * accuracy:.1f}%"]


@snippet
def default_dtype_switch(torch):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        made = [torch.tensor([1.0]).dtype, torch.zeros(1).dtype, torch.arange(2.0).dtype]
    finally:
        torch.set_default_dtype(previous)
    return [*made, torch.zeros(1).dtype]


@snippet
def in_place_on_leaf_is_an_error(torch):
    w = torch.ones(2, requires_grad=True)
    try:
        w.add_(1)
    except RuntimeError:
        return "RuntimeError"
    return "no error"


@snippet
def numpy_of_grad_tensor_is_an_error(torch):
    w = torch.ones(2, requires_grad=True)
    try:
        w.numpy()
    except RuntimeError:
        return ["RuntimeError", w.detach().numpy()]
    return ["no error"]


@snippet
def clone_detach_copy(torch):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    z = x.detach()
    z[0] = 10.0  # shares storage with x
    c = torch.empty(2)
    c.copy_(torch.tensor([5.0, 6.0]))
    return [y.requires_grad, y.grad_fn is not None, z.requires_grad, x, c]


@snippet
def nonzero_and_counting(torch):
    x = torch.tensor([0, 3, 0, 5, 1])
    return [torch.nonzero(x), x.nonzero(as_tuple=True)[0], torch.count_nonzero(x),
            torch.bincount(x), (x > 0).sum().item(), torch.numel(x)]  # fmt: skip
