"""The models `gradflow train` builds: small classifiers for square grey-scale images.

Each builder takes the image side and the number of classes, so the same model trains on the
embedded 8x8 digits and on 28x28 MNIST.
"""

from __future__ import annotations

from collections.abc import Callable

from gradflow import creation, nn
from gradflow.tensor import Tensor


def mlp(image_size: int = 8, num_classes: int = 10) -> nn.Module:
    """Two hidden layers of ReLU units over the flattened image."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(image_size * image_size, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def cnn(image_size: int = 8, num_classes: int = 10) -> nn.Module:
    """Two 3x3 conv blocks (conv, batch norm, ReLU, 2x2 max pool), then a small classifier."""
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(64 * side * side, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


class RowReader(nn.Module):
    """A recurrent classifier that reads an image row by row (one timestep per row) and
    classifies from the last layer's final hidden state."""

    def __init__(self, recurrent: nn.Module, hidden_size: int, num_classes: int):
        super().__init__()
        self.rnn = recurrent
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        rows = images.reshape(images.shape[0], images.shape[-2], images.shape[-1])
        _, state = self.rnn(rows)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        return self.head(h_n[-1])


def lstm(image_size: int = 8, num_classes: int = 10, hidden_size: int = 128) -> nn.Module:
    """An LSTM over the image's rows (8 timesteps of 8 pixels on digits)."""
    return RowReader(nn.LSTM(image_size, hidden_size, batch_first=True), hidden_size, num_classes)


def gru(image_size: int = 8, num_classes: int = 10, hidden_size: int = 128) -> nn.Module:
    """A GRU over the image's rows (8 timesteps of 8 pixels on digits)."""
    return RowReader(nn.GRU(image_size, hidden_size, batch_first=True), hidden_size, num_classes)


class RowTransformer(nn.Module):
    """A Transformer encoder that reads an image's rows as tokens (8 tokens of 8 pixels on
    digits): each row projected to d_model, a learned position embedding added, pre-norm
    encoder layers, then the tokens' mean classified."""

    def __init__(self, image_size: int, num_classes: int, d_model: int, heads: int, layers: int):
        super().__init__()
        self.embed = nn.Linear(image_size, d_model)
        self.position = nn.Parameter(creation.zeros(1, image_size, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=2 * d_model,
            dropout=0.1,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        rows = images.reshape(images.shape[0], images.shape[-2], images.shape[-1])
        tokens = self.encoder(self.embed(rows) + self.position)
        return self.head(self.norm(tokens).mean(dim=1))


def transformer(image_size: int = 8, num_classes: int = 10, d_model: int = 64, heads: int = 4,
                layers: int = 2) -> nn.Module:  # fmt: skip
    """A 2-layer Transformer encoder over the image's rows as tokens, with learned positions."""
    return RowTransformer(image_size, num_classes, d_model, heads, layers)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "lstm": lstm,
    "gru": gru,
    "transformer": transformer,
}
