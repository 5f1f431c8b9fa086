"""Determinism on the CPU: the same seed trains the same parameters, bit for bit.

The random parts of a run are the initial weights and dropout masks (the default cpu generator,
seeded by ``gradflow.manual_seed``) and the shuffling order (the DataLoader's own generator).
Which GPU ops are not bitwise reproducible is listed in kernels/README.md.
"""

import numpy
import pytest

import gradflow as gf
from gradflow import data, models
from gradflow.ops.losses import cross_entropy

STEPS = 4
BATCH = 32


@pytest.fixture(scope="module")
def digits():
    return data.Digits(train=True)


def _train(name: str, seed: int, digits: data.Dataset) -> list:
    """STEPS of Adam on shuffled digits batches, in training mode (dropout on); the final
    parameters and buffers (batch-norm running statistics included)."""
    gf.manual_seed(seed)  # initial weights and dropout masks
    model = models.MODELS[name]()
    model.train()
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-2)
    loader = data.DataLoader(digits, BATCH, shuffle=True, generator=gf.Generator("cpu", seed))
    for step, (images, labels) in enumerate(loader):
        if step == STEPS:
            break
        loss = cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [(key, value.numpy().copy()) for key, value in model.state_dict().items()]


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_the_same_seed_gives_bit_identical_parameters(name, digits):
    first = _train(name, seed=3, digits=digits)
    other = _train(name, seed=4, digits=digits)  # moves every random stream in between
    again = _train(name, seed=3, digits=digits)

    assert [key for key, _ in first] == [key for key, _ in again]
    for (key, a), (_, b) in zip(first, again):
        assert a.dtype == b.dtype and a.shape == b.shape, key
        assert a.tobytes() == b.tobytes(), f"{name}: {key} differs between two runs of seed 3"
    differing = [key for (key, a), (_, b) in zip(first, other) if not numpy.array_equal(a, b)]
    weights = [key for key, _ in first if key.endswith("weight")]
    assert set(weights) <= set(differing), f"{name}: seeds 3 and 4 agree on {weights}"


def test_dropout_masks_follow_the_seed():
    x = gf.ones(1000)
    dropout = gf.nn.Dropout(0.5)
    gf.manual_seed(7)
    first = dropout(x).numpy().copy()
    gf.manual_seed(7)
    again = dropout(x).numpy().copy()
    gf.manual_seed(8)
    other = dropout(x).numpy().copy()
    assert first.tobytes() == again.tobytes()
    assert not numpy.array_equal(first, other)
