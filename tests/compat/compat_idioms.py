"""Corpus snippets: idioms from real training scripts beyond the basics (custom autograd
Functions, mixed precision on the cpu, torch.compile, determinism switches, sequence padding,
loader workers, hooks) and less common tensor ops."""

from compat_corpus import snippet
from compat_nn import fill_deterministic


@snippet
def custom_autograd_function(torch):
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return 2 * x * grad_output

    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = Square.apply(x).sum()
    y.backward()
    return [y, x.grad]


@snippet
def straight_through_estimator(torch):
    class RoundSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.round(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = torch.tensor([0.2, 0.7, 1.6], requires_grad=True)
    (RoundSTE.apply(x) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    return x.grad


@snippet
def tensor_and_module_backward_hooks(torch):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.clone()))
    y = x * 3
    y.retain_grad()
    y.sum().backward()
    return [seen[0], y.grad, x.grad]


@snippet
def cpu_autocast_and_grad_scaler(torch):
    model = fill_deterministic(torch, torch.nn.Linear(3, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=torch.cuda.is_available())
    x = torch.ones(4, 3)
    with torch.autocast(device_type="cpu", enabled=False):
        loss = model(x).pow(2).mean()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return [loss, model.weight]


@snippet
def torch_compile_is_transparent(torch):
    model = fill_deterministic(torch, torch.nn.Linear(2, 2))
    compiled = torch.compile(model, backend="eager")  # the default backend compiles C++: slow
    return [compiled(torch.ones(1, 2)), compiled.weight.shape]


@snippet
def determinism_switches(torch):
    torch.use_deterministic_algorithms(True)
    try:
        flag = torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    torch.set_float32_matmul_precision("high")
    torch.set_num_threads(torch.get_num_threads())
    torch.cuda.manual_seed_all(0)
    torch.set_printoptions(precision=3)
    torch.set_printoptions(profile="default")
    return [flag, torch.are_deterministic_algorithms_enabled()]


@snippet
def pad_sequence_for_batches(torch):
    from_rnn = torch.nn.utils.rnn
    seqs = [torch.tensor([1, 2, 3]), torch.tensor([4]), torch.tensor([5, 6])]
    padded = from_rnn.pad_sequence(seqs, batch_first=True, padding_value=0)
    lengths = torch.tensor([len(s) for s in seqs])
    mask = torch.arange(padded.size(1))[None, :] < lengths[:, None]
    return [padded, mask, from_rnn.pad_sequence(seqs).shape]


@snippet
def loader_with_workers(torch):
    data = torch.utils.data
    dataset = data.TensorDataset(torch.arange(12.0).reshape(6, 2), torch.arange(6))
    loader = data.DataLoader(dataset, batch_size=2, num_workers=2, pin_memory=False)
    return [[y.tolist() for _, y in loader], len(loader)]


@snippet
def samplers(torch):
    data = torch.utils.data
    dataset = data.TensorDataset(torch.arange(6))
    sequential = list(data.SequentialSampler(dataset))
    sampler = data.WeightedRandomSampler([0.0, 0.0, 1.0], num_samples=4, replacement=True)
    batches = list(data.BatchSampler(range(5), batch_size=2, drop_last=False))
    loader = data.DataLoader(dataset, batch_size=3, sampler=data.SubsetRandomSampler([0, 1]))
    return [sequential, list(sampler), batches, sorted(next(iter(loader))[0].tolist())]


@snippet
def more_tensor_ops(torch):
    x = torch.arange(6.0).reshape(2, 3)
    return [
        x.repeat(2, 1),
        x.flip(1),
        torch.roll(x, 1, dims=1),
        x.cumprod(dim=1),
        torch.logsumexp(x, dim=1),
        torch.diag(torch.tensor([1.0, 2.0])),
        x.masked_select(x > 2),
        torch.isnan(x / x).any(),
        torch.nan_to_num(x / x, nan=0.0),
        torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij")[1],
        x.amax(dim=0),
        x.clone().index_fill_(1, torch.tensor([0]), -1.0),
        torch.tile(torch.tensor([1, 2]), (2,)),
        x.square(),
        x.mean(dim=0).unsqueeze(0).expand(3, -1).shape,
    ]


@snippet
def upsampling_and_transposed_conv(torch):
    nn = torch.nn
    x = torch.linspace(0, 1, 1 * 2 * 3 * 3).reshape(1, 2, 3, 3)
    deconv = fill_deterministic(torch, nn.ConvTranspose2d(2, 1, kernel_size=2, stride=2))
    return [deconv(x), nn.functional.interpolate(x, scale_factor=2, mode="nearest"),
            nn.Upsample(scale_factor=2)(x).shape]  # fmt: skip


@snippet
def transformer_encoder_shapes(torch):
    layer = torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16,
                                             batch_first=True)  # fmt: skip
    encoder = torch.nn.TransformerEncoder(layer, num_layers=2)
    return encoder(torch.zeros(2, 5, 8)).shape


@snippet
def named_modules_and_types(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Linear(2, 2)))
    return [[name for name, _ in model.named_modules()],
            sum(isinstance(m, nn.Linear) for m in model.modules()),
            str(model[0].weight.dtype), repr(nn.ReLU())]  # fmt: skip


@snippet
def save_to_bytes_buffer(torch):
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.arange(3), "step": 5}, buffer)
    buffer.seek(0)
    restored = torch.load(buffer)
    return [restored["w"], restored["step"]]


@snippet
def distributions_sampling_shapes(torch):
    dist = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    cat = torch.distributions.Categorical(logits=torch.zeros(4))
    return [dist.sample().shape, dist.log_prob(torch.zeros(3)), cat.sample((5,)).shape,
            cat.entropy()]  # fmt: skip
