"""gradflow or torch: the small vocabulary the benchmark workloads are written in, so one
definition builds both sides of a comparison on the same data: tensors, functional ops and
optimizers of either library, seeded inputs, and torch twins of gradflow modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradflow.bench.machine import torch_or_none

FRAMEWORKS = ("gradflow", "torch")


class Framework:
    """gradflow or torch on a device: ``lib`` (the top-level module), ``F`` (its functional
    ops), ``tensor(array)`` and ``module(build)``."""

    def __init__(self, name: str, device: str):
        if name not in FRAMEWORKS:
            raise ValueError(f"unknown framework {name!r}: expected one of {FRAMEWORKS}")
        if name == "torch":
            torch = torch_or_none()
            self.lib, self.F = torch, torch.nn.functional
        else:
            import gradflow
            import gradflow.nn.functional

            self.lib, self.F = gradflow, gradflow.nn.functional
        self.name, self.device = name, device

    def tensor(self, array: np.ndarray, grad: bool = False) -> Any:
        """`array` copied onto the device (a leaf that requires grad when `grad`)."""
        return self.lib.tensor(array, device=self.device, requires_grad=grad)

    def module(self, build: Callable[[], Any]) -> Any:
        """The gradflow module `build()` makes (seeded, so both sides get the same weights), as
        itself or as its torch twin, on the device."""
        import gradflow

        gradflow.manual_seed(0)
        module = build()
        if self.name == "torch":
            module = torch_twin(module)
        return module.to(self.device)


def rng(seed: int = 0) -> np.random.Generator:
    """The seeded generator every workload draws its inputs from."""
    return np.random.default_rng(seed)


def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    """Seeded float32 standard normal values times `scale`."""
    return (rng().standard_normal(shape) * scale).astype(np.float32)


def torch_ready(device: str) -> bool:
    """Whether torch is importable and can run on `device` ("cpu" or "cuda[:N]")."""
    torch = torch_or_none()
    return torch is not None and (not device.startswith("cuda") or torch.cuda.is_available())


def torch_peak_memory(fn: Callable[[], Any], device: str = "cpu") -> int:
    """Bytes torch allocated at the peak of one ``fn()`` call above what was live before it:
    torch's side of gradflow.bench.timing.peak_memory, which cannot see torch's allocator.

    CPU: the allocation and free events of torch's profiler (profile_memory=True), summed in
    time order; a block allocated before the call and freed in it is not seen (the profiler
    does not know its size), so compare steps that free nothing older than themselves. CUDA:
    torch.cuda.max_memory_allocated after reset_peak_memory_stats. Slow: never a timed call.
    """
    torch = torch_or_none()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    import warnings

    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():  # "profiler results will not include the deallocation..."
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        if event.device_type() == torch.autograd.DeviceType.CPU:
            live += event.nbytes()
            peak = max(peak, live)
    return peak


def torch_twin(module: Any) -> Any:
    """The same network in torch, built from a gradflow module (gradflow.models' layers) and
    loaded with its weights (parameter and buffer names match)."""
    torch = torch_or_none()
    twin = _torch_layer(torch, module)
    state = {k: torch.from_numpy(np.array(v.array)) for k, v in module.state_dict().items()}
    twin.load_state_dict(state)
    return twin


def _torch_layer(torch: Any, m: Any) -> Any:
    nn, kind = torch.nn, type(m).__name__
    if kind == "Sequential":
        return nn.Sequential(*(_torch_layer(torch, child) for child in m.children()))
    if kind == "RowReader":
        return _torch_row_reader(torch, _torch_layer(torch, m.rnn), _torch_layer(torch, m.head))
    if kind == "RowTransformer":
        return _torch_row_transformer(torch, m)
    makers = {
        "Flatten": lambda: nn.Flatten(m.start_dim, m.end_dim),
        "ReLU": nn.ReLU,
        "Dropout": lambda: nn.Dropout(m.p),
        "Linear": lambda: nn.Linear(m.in_features, m.out_features),
        "Conv2d": lambda: nn.Conv2d(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups
        ),
        "BatchNorm2d": lambda: nn.BatchNorm2d(m.num_features, m.eps, m.momentum),
        "MaxPool2d": lambda: nn.MaxPool2d(m.kernel_size, m.stride, m.padding),
        "LSTM": lambda: nn.LSTM(*_recurrent_sizes(m), batch_first=m.batch_first),
        "GRU": lambda: nn.GRU(*_recurrent_sizes(m), batch_first=m.batch_first),
    }
    if kind not in makers:
        raise NotImplementedError(f"no torch twin for the gradflow layer {kind}")
    return makers[kind]()


def _recurrent_sizes(m: Any) -> tuple[int, int, int]:
    return m.input_size, m.hidden_size, m.num_layers


def _torch_row_reader(torch: Any, recurrent: Any, head: Any) -> Any:
    """gradflow.models.RowReader in torch: the rows through the recurrent layer, then the head."""

    class RowReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.head = recurrent, head

        def forward(self, images: Any) -> Any:
            _, state = self.rnn(images.reshape(images.shape[0], images.shape[-2], -1))
            h_n = state[0] if isinstance(state, tuple) else state
            return self.head(h_n[-1])

    return RowReader()


def _torch_row_transformer(torch: Any, m: Any) -> Any:
    """gradflow.models.RowTransformer in torch: rows embedded, positions added, the encoder
    stack (torch.nn.TransformerEncoder with the gradflow layers' settings), the tokens' mean
    through the norm and the head; parameter names as gradflow's."""
    nn = torch.nn
    first = m.encoder.layers[0]
    activation = {1: "relu", 2: "gelu"}.get(first.activation_relu_or_gelu)
    if activation is None:
        raise NotImplementedError("no torch twin for a TransformerEncoderLayer activation "
                                  f"{first.activation!r}")  # fmt: skip
    layer = nn.TransformerEncoderLayer(
        first.self_attn.embed_dim,
        first.self_attn.num_heads,
        first.linear1.out_features,
        first.dropout.p,
        activation,
        first.norm1.eps,
        batch_first=first.self_attn.batch_first,
        norm_first=first.norm_first,
    )
    norm = m.encoder.norm
    encoder = nn.TransformerEncoder(
        layer,
        m.encoder.num_layers,
        None if norm is None else nn.LayerNorm(norm.normalized_shape, norm.eps),
        enable_nested_tensor=False,
    )

    class RowTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = _torch_layer(torch, m.embed)
            self.position = nn.Parameter(torch.zeros(tuple(m.position.shape)))
            self.encoder = encoder
            self.norm = nn.LayerNorm(m.norm.normalized_shape, m.norm.eps)
            self.head = _torch_layer(torch, m.head)

        def forward(self, images: Any) -> Any:
            rows = images.reshape(images.shape[0], images.shape[-2], images.shape[-1])
            tokens = self.encoder(self.embed(rows) + self.position)
            return self.head(self.norm(tokens).mean(dim=1))

    return RowTransformer()
