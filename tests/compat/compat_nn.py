"""Corpus snippets: nn.Module subclasses, layers, functional calls, losses, state dicts."""

from collections import OrderedDict

from compat_corpus import snippet


def fill_deterministic(torch, model):
    """What a user does to start two runs from the same weights: fill them from a formula."""
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape) * (1 + 0.1 * i))
    return model


@snippet
def module_subclass_forward(torch):
    nn = torch.nn
    F = torch.nn.functional

    class Net(nn.Module):
        def __init__(self, n_in, n_hidden, n_out):
            super().__init__()
            self.fc1 = nn.Linear(n_in, n_hidden)
            self.fc2 = nn.Linear(n_hidden, n_out)

        def forward(self, x):
            x = F.relu(self.fc1(x))
            return self.fc2(x)

    model = fill_deterministic(torch, Net(4, 8, 3))
    x = torch.linspace(-1, 1, 8).reshape(2, 4)
    out = model(x)
    return [out, out.shape, model.fc1.weight.shape, model.fc2.bias.shape]


@snippet
def sequential_forms(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", nn.Sigmoid())]))
    fill_deterministic(torch, model)
    fill_deterministic(torch, named)
    x = torch.ones(1, 3)
    return [model(x), named(x), len(model), type(model[0]).__name__, model[-1].out_features,
            type(named.fc).__name__, [name for name, _ in named.named_children()]]  # fmt: skip


@snippet
def parameter_counting(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    names = [name for name, _ in model.named_parameters()]
    return [total, trainable, names, len(list(model.parameters()))]


@snippet
def state_dict_contents(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 1))
    sd = model.state_dict()
    return [list(sd.keys()), sd["1.running_var"], sd["1.num_batches_tracked"], sd["0.weight"].shape,
            sd["3.bias"].requires_grad]  # fmt: skip


@snippet
def load_state_dict_round_trip(torch):
    nn = torch.nn
    a = fill_deterministic(torch, nn.Linear(3, 2))
    b = nn.Linear(3, 2)
    result = b.load_state_dict(a.state_dict())
    x = torch.ones(2, 3)
    return [torch.equal(a(x), b(x)), list(result.missing_keys), list(result.unexpected_keys)]


@snippet
def load_state_dict_not_strict(torch):
    nn = torch.nn
    model = nn.Linear(3, 2)
    result = model.load_state_dict({"weight": torch.zeros(2, 3)}, strict=False)
    return [result.missing_keys, model.weight.sum().item()]


@snippet
def train_eval_modes(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    fill_deterministic(torch, model)
    modes = [model.training, model[1].training]
    model.eval()
    modes += [model.training, model[1].training]
    x = torch.ones(2, 4)
    same = torch.equal(model(x), model(x))
    model.train()
    return [*modes, same, model.training, model.train(False).training]


@snippet
def functional_activations(torch):
    F = torch.nn.functional
    x = torch.linspace(-3, 3, 7)
    return [F.relu(x), F.leaky_relu(x, 0.1), F.gelu(x), F.silu(x), F.elu(x), F.softplus(x),
            F.sigmoid(x), F.tanh(x), F.softmax(x, dim=0), F.log_softmax(x.view(1, -1), dim=1),
            F.hardtanh(x), F.relu6(x * 3), torch.relu(x)]  # fmt: skip


@snippet
def functional_losses(torch):
    F = torch.nn.functional
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    target = torch.tensor([0, 2])
    pred = torch.tensor([0.5, 1.5, 2.0])
    y = torch.tensor([1.0, 1.0, 3.0])
    return [
        F.cross_entropy(logits, target),
        F.cross_entropy(logits, target, reduction="sum"),
        F.cross_entropy(logits, target, reduction="none"),
        F.cross_entropy(logits, target, label_smoothing=0.1),
        F.nll_loss(F.log_softmax(logits, dim=1), target),
        F.mse_loss(pred, y),
        F.l1_loss(pred, y),
        F.smooth_l1_loss(pred, y),
        F.binary_cross_entropy(torch.sigmoid(pred), y / 3),
        F.binary_cross_entropy_with_logits(pred, y / 3),
    ]


@snippet
def loss_modules(torch):
    nn = torch.nn
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]])
    target = torch.tensor([0, 2, -100])
    criterion = nn.CrossEntropyLoss()
    weighted = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    return [
        criterion(logits, target),
        weighted(logits[:2], target[:2]),
        nn.MSELoss()(logits, torch.zeros(3, 3)),
        nn.BCEWithLogitsLoss()(logits, logits.sigmoid()),
        nn.NLLLoss()(logits.log_softmax(1), target),
        nn.L1Loss(reduction="sum")(logits, logits * 0),
        nn.HuberLoss()(logits, logits * 0),
    ]


@snippet
def cross_entropy_backward(torch):
    nn = torch.nn
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], requires_grad=True)
    loss = nn.CrossEntropyLoss()(logits, torch.tensor([0, 2]))
    loss.backward()
    return [loss, logits.grad]


@snippet
def init_functions(torch):
    nn = torch.nn
    layer = nn.Linear(4, 3)
    nn.init.constant_(layer.weight, 0.5)
    nn.init.zeros_(layer.bias)
    conv = nn.Conv2d(1, 2, 3)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    nn.init.xavier_uniform_(layer.weight)
    bound = (6 / (4 + 3)) ** 0.5
    other = torch.empty(2, 2)
    nn.init.ones_(other)
    nn.init.normal_(conv.bias, mean=0.0, std=0.01)
    nn.init.uniform_(torch.empty(3), -0.1, 0.1)
    nn.init.trunc_normal_(torch.empty(3), std=0.02)
    nn.init.orthogonal_(torch.empty(3, 3))
    return [layer.bias, bool(layer.weight.abs().max() <= bound), other, conv.weight.shape,
            layer.weight.requires_grad]  # fmt: skip


@snippet
def apply_init_function(torch):
    nn = torch.nn

    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.1)
            if m.bias is not None:
                m.bias.data.fill_(0.01)

    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    model.apply(init_weights)
    return [model(torch.ones(1, 3)), model[2].bias is None]


@snippet
def conv_and_pool_layers(torch):
    nn = torch.nn
    F = torch.nn.functional
    x = torch.linspace(-1, 1, 2 * 1 * 6 * 6).reshape(2, 1, 6, 6)
    conv = fill_deterministic(torch, nn.Conv2d(1, 3, kernel_size=3, padding=1))
    y = conv(x)
    return [y, nn.MaxPool2d(2)(y), F.max_pool2d(y, kernel_size=2, stride=2).shape,
            nn.AvgPool2d(2)(y), nn.AdaptiveAvgPool2d((1, 1))(y).flatten(1),
            F.adaptive_avg_pool2d(y, 1).shape, nn.Conv2d(1, 4, 3, stride=2)(x).shape,
            F.conv2d(x, conv.weight, conv.bias, padding=1).shape]  # fmt: skip


@snippet
def conv1d_for_sequences(torch):
    nn = torch.nn
    x = torch.linspace(-1, 1, 2 * 3 * 10).reshape(2, 3, 10)
    conv = fill_deterministic(torch, nn.Conv1d(3, 4, kernel_size=3, padding=1))
    return [conv(x), nn.MaxPool1d(2)(conv(x)).shape]


@snippet
def normalization_layers(torch):
    nn = torch.nn
    x = torch.linspace(-2, 2, 24).reshape(4, 6)
    bn = nn.BatchNorm1d(6)
    train_out = bn(x)
    bn.eval()
    eval_out = bn(x)
    ln = nn.LayerNorm(6)
    img = torch.linspace(-1, 1, 2 * 4 * 3 * 3).reshape(2, 4, 3, 3)
    return [train_out, eval_out, bn.running_mean, bn.running_var, bn.num_batches_tracked, ln(x),
            nn.GroupNorm(2, 4)(img), nn.BatchNorm2d(4)(img).mean(dim=(0, 2, 3))]  # fmt: skip


@snippet
def embedding_lookup(torch):
    nn = torch.nn
    emb = nn.Embedding(10, 3, padding_idx=0)
    with torch.no_grad():
        emb.weight.copy_(torch.arange(30.0).reshape(10, 3))
    tokens = torch.tensor([[1, 2, 0], [4, 4, 9]])
    return [emb(tokens), emb(tokens).shape, emb.weight.shape, emb.num_embeddings]


@snippet
def recurrent_layers_shapes(torch):
    nn = torch.nn
    lstm = nn.LSTM(input_size=4, hidden_size=5, num_layers=2, batch_first=True)
    gru = nn.GRU(4, 5)
    x = torch.zeros(3, 7, 4)
    out, (h, c) = lstm(x)
    out2, h2 = gru(x.transpose(0, 1))
    return [out.shape, h.shape, c.shape, out2.shape, h2.shape,
            [name for name, _ in lstm.named_parameters()][:4]]  # fmt: skip


@snippet
def lstm_deterministic_output(torch):
    nn = torch.nn
    lstm = fill_deterministic(torch, nn.LSTM(3, 4, batch_first=True))
    x = torch.linspace(-1, 1, 2 * 5 * 3).reshape(2, 5, 3)
    out, (h, c) = lstm(x)
    return [out[:, -1], h, c]


@snippet
def module_containers(torch):
    nn = torch.nn

    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})

        def forward(self, x):
            for layer in self.layers:
                x = torch.relu(layer(x))
            return {k: head(x) for k, head in self.heads.items()}

    model = fill_deterministic(torch, Tower())
    out = model(torch.ones(1, 2))
    return [out["a"], out["b"], len(model.layers), list(model.heads.keys()),
            len(list(model.modules())), len(list(model.children()))]  # fmt: skip


@snippet
def buffers_and_attributes(torch):
    nn = torch.nn

    class Normalizer(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([1.0, 2.0]))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)
            self.scale = nn.Parameter(torch.ones(2))

        def forward(self, x):
            return (x - self.mean) * self.scale

    m = Normalizer()
    return [m(torch.tensor([3.0, 3.0])), list(m.state_dict().keys()),
            [n for n, _ in m.named_buffers()], [n for n, _ in m.named_parameters()],
            isinstance(m.scale, nn.Parameter), m.scale.requires_grad]  # fmt: skip


@snippet
def freezing_layers(torch):
    nn = torch.nn
    backbone = nn.Linear(4, 4)
    head = nn.Linear(4, 2)
    for p in backbone.parameters():
        p.requires_grad = False
    head.requires_grad_(True)
    model = nn.Sequential(backbone, head)
    optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
    return [sum(p.numel() for p in model.parameters() if p.requires_grad),
            len(optimizer.param_groups[0]["params"])]  # fmt: skip


@snippet
def zero_grad_sets_none(torch):
    model = torch.nn.Linear(2, 1)
    model(torch.ones(1, 2)).sum().backward()
    had = model.weight.grad is not None
    model.zero_grad()
    return [had, model.weight.grad is None]


@snippet
def flatten_identity_unflatten(torch):
    nn = torch.nn
    x = torch.arange(24.0).reshape(2, 3, 4)
    return [nn.Flatten()(x).shape, nn.Flatten(0, 1)(x).shape, nn.Identity()(x).shape,
            nn.Unflatten(1, (3, 1))(x).shape, torch.flatten(x, start_dim=1).shape]  # fmt: skip


@snippet
def functional_dropout_and_pad(torch):
    F = torch.nn.functional
    x = torch.arange(6.0).reshape(1, 2, 3)
    return [F.dropout(x, p=0.5, training=False), F.pad(x, (1, 1)), F.pad(x, (0, 1, 1, 0), value=-1),
            F.normalize(x, dim=-1), F.linear(x, torch.ones(2, 3), torch.zeros(2))]  # fmt: skip


@snippet
def activation_modules(torch):
    nn = torch.nn
    x = torch.linspace(-2, 2, 5)
    return [nn.ReLU()(x), nn.GELU()(x), nn.SiLU()(x), nn.Tanh()(x), nn.Sigmoid()(x),
            nn.LeakyReLU(0.2)(x), nn.Softmax(dim=0)(x), nn.LogSoftmax(dim=0)(x), nn.ELU()(x),
            nn.Softplus()(x), nn.Mish()(x), nn.Hardswish()(x)]  # fmt: skip


@snippet
def gradient_clipping(torch):
    nn = torch.nn
    model = fill_deterministic(torch, nn.Linear(3, 2))
    (model(torch.ones(4, 3)) * 10).sum().backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    clipped = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.1)
    return [total, clipped, model.weight.grad.abs().max()]


@snippet
def parameters_to_vector_round_trip(torch):
    nn = torch.nn
    model = fill_deterministic(torch, nn.Linear(2, 2))
    vec = nn.utils.parameters_to_vector(model.parameters())
    nn.utils.vector_to_parameters(vec * 2, model.parameters())
    return [vec, model.bias]


@snippet
def forward_hooks(torch):
    nn = torch.nn
    model = fill_deterministic(torch, nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    captured = {}

    def hook(module, inputs, output):
        captured["relu"] = output.detach()

    handle = model[1].register_forward_hook(hook)
    model(torch.ones(1, 2))
    handle.remove()
    model(torch.zeros(1, 2))
    return captured["relu"]


@snippet
def model_to_device_and_dtype(torch):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.nn.Linear(2, 2).to(device)
    doubled = torch.nn.Linear(2, 2).double()
    return [next(model.parameters()).device.type, doubled.weight.dtype,
            model.float().weight.dtype, doubled.to(torch.float32).bias.dtype]  # fmt: skip


@snippet
def multihead_attention_shapes(torch):
    attn = torch.nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True)
    x = torch.zeros(2, 5, 8)
    out, weights = attn(x, x, x)
    return [out.shape, weights.shape]


@snippet
def scaled_dot_product_attention(torch):
    F = torch.nn.functional
    q = torch.linspace(-1, 1, 2 * 3 * 4).reshape(1, 2, 3, 4)
    return F.scaled_dot_product_attention(q, q, q, is_causal=True)
