"""Corpus snippets: semantics programs rely on without saying so (shared memory with NumPy,
aliases NumPy users type, retain_graph, schedulers in checkpoints, model printing)."""

import numpy
from compat_corpus import snippet
from compat_nn import fill_deterministic


@snippet
def numpy_shares_memory(torch):
    t = torch.ones(3)
    n = t.numpy()
    t.add_(1)  # seen through n
    a = numpy.zeros(2, dtype=numpy.float32)
    u = torch.from_numpy(a)
    a[0] = 5.0  # seen through u
    return [n.tolist(), u, torch.as_tensor(a).tolist()]


@snippet
def numpy_style_aliases(torch):
    x = torch.arange(6.0).reshape(2, 3)
    return [x.sum(axis=1), torch.mean(x, axis=0), x.clip(1, 4), x.transpose(1, 0).shape,
            x.max(axis=0).values, torch.concatenate([x, x]).shape, x.absolute(),
            torch.multiply(x, 2), torch.subtract(x, 1), x.greater(2)]  # fmt: skip


@snippet
def item_of_one_element(torch):
    return [torch.tensor([3.0]).item(), torch.tensor([[7]]).item(), float(torch.tensor([2.5]))]


@snippet
def in_place_shape_ops_and_to_other(torch):
    x = torch.zeros(3)
    x.unsqueeze_(0)
    shape1 = x.shape
    x.squeeze_()
    y = torch.ones(2, dtype=torch.float64)
    return [shape1, x.shape, x.to(y).dtype, torch.arange(3).to(y.dtype).dtype]


@snippet
def where_single_argument(torch):
    x = torch.tensor([[0, 1], [2, 0]])
    rows, cols = torch.where(x > 0)
    return [rows, cols, (x[:, None] == torch.tensor([0, 2])[None, :, None]).shape]


@snippet
def retain_graph_and_double_backward_of_sum(torch):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x**2).sum()
    y.backward(retain_graph=True)
    first = x.grad.clone()
    y.backward()  # accumulates
    z = x * 2
    z.backward(torch.tensor([1.0, 0.5]))  # gradient for a non-scalar output
    return [first, x.grad]


@snippet
def stack_of_losses_and_running_mean(torch):
    losses = [torch.tensor(0.5), torch.tensor(0.25), torch.tensor(1.0)]
    mean = torch.stack(losses).mean()
    running = 0.0
    for loss in losses:
        running += loss.item()
    return [mean, running / len(losses), sum(losses) / len(losses), max(losses).item()]


@snippet
def scheduler_state_in_checkpoint(torch):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    optimizer2 = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, step_size=2, gamma=0.1)
    scheduler2.load_state_dict(state)
    optimizer2.load_state_dict(optimizer.state_dict())
    scheduler2.step()
    return [state["last_epoch"], state["step_size"], scheduler2.get_last_lr(),
            optimizer2.param_groups[0]["lr"]]  # fmt: skip


@snippet
def cosine_warm_restarts(torch):
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=3, T_mult=2)
    lrs = []
    for _ in range(8):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@snippet
def model_printing(torch):
    nn = torch.nn
    return [repr(nn.Linear(2, 3)), repr(nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1)),
            repr(nn.ReLU()), repr(nn.Dropout(0.5)), str(nn.Sequential(nn.Linear(2, 2), nn.ReLU())),
            repr(nn.BatchNorm1d(4)), repr(nn.Embedding(10, 3))]  # fmt: skip


@snippet
def embedding_from_pretrained(torch):
    weights = torch.arange(12.0).reshape(4, 3)
    emb = torch.nn.Embedding.from_pretrained(weights, freeze=True)
    return [emb(torch.tensor([2, 0])), emb.weight.requires_grad]


@snippet
def pack_padded_sequence_rnn(torch):
    rnn_utils = torch.nn.utils.rnn
    gru = fill_deterministic(torch, torch.nn.GRU(2, 3, batch_first=True))
    x = torch.linspace(-1, 1, 2 * 4 * 2).reshape(2, 4, 2)
    lengths = torch.tensor([4, 2])
    packed = rnn_utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h = gru(packed)
    padded, out_lengths = rnn_utils.pad_packed_sequence(out, batch_first=True)
    return [padded, out_lengths, h]


@snippet
def concat_dataset_and_enumerate(torch):
    data = torch.utils.data
    a = data.TensorDataset(torch.arange(3))
    b = data.TensorDataset(torch.arange(10, 14))
    both = data.ConcatDataset([a, b])
    loader = data.DataLoader(both, batch_size=3)
    seen = [(batch_idx, batch[0].tolist()) for batch_idx, batch in enumerate(loader)]
    return [len(both), both[4][0], seen, len(loader.dataset)]


@snippet
def state_dict_clone_idioms(torch):
    model = fill_deterministic(torch, torch.nn.Linear(2, 2))
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.mul_(0)
    cpu_copy = {k: v.cpu() for k, v in snapshot.items()}
    model.load_state_dict(cpu_copy)
    return [model.weight, list(snapshot)]


@snippet
def tensor_creation_with_device_and_dtype(torch):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.tensor([1, 2], device=device, dtype=torch.float32)
    y = torch.zeros(2, 2, device=torch.device(device), requires_grad=True)
    z = x.to(device, non_blocking=True)
    flags = torch.ones(2, dtype=torch.bool)
    leaf = torch.tensor(2.0, requires_grad=True)
    return [x, y.requires_grad, z.device.type, flags.dtype, torch.full((2,), True).dtype,
            leaf.is_leaf]  # fmt: skip
