"""Evolution-strategy gradient estimators: OpenAI-ES and Guided ES, writing ``param.grad``.

An estimator perturbs the parameters it was given with seeded Gaussian noise, evaluates an
objective at each perturbed point (no graph, no backward: the objective may be accuracy, a hard
threshold, a simulator's reward), and turns the values into a gradient estimate it writes into
``.grad`` the way backward does, so every optimizer, scheduler and clipping function applies it.

For a population of N = 2m evaluations in antithetic pairs (theta + sigma*u_i, theta - sigma*u_i)

    g = 1 / (N * sigma) * sum_i (F(theta + sigma*u_i) - F(theta - sigma*u_i)) * u_i

which estimates the gradient of F smoothed by the noise (Salimans et al. 2017), with F the raw
objective or its centered ranks (`shaping.centered_rank`). Only seeds are kept: each u_i is
drawn again from its seed to form g, so the memory is one noise vector at a time (the batched
population forward holds a chunk of them). OpenAI-ES draws u ~ N(0, I); Guided ES
(Maheswaranathan et al. 2019) draws u ~ N(0, alpha*I + (1 - alpha)*(n/k)*U U^T), U an
orthonormal basis of the k latest surrogate gradients (backprop through a truncated or
approximate model, say): the paper's covariance times n, so alpha = 1 is plain OpenAI-ES at the
same sigma and E|u|^2 = n for every alpha.

Noise comes from NumPy's PCG64 on the host (then moves to the parameters' device), so a seed
gives the same run on the CPU and on a GPU. With ``distributed=True`` the members are split over
the processes of gradflow.distributed's default group: each evaluates its share, the ranks
exchange only the fitness values (one all_reduce of N floats), and each forms the same g from the
shared seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy

from gradflow import nn
from gradflow.autograd.grad_mode import no_grad
from gradflow.backend import get_array_module
from gradflow.evolution.population import BatchedForward
from gradflow.evolution.shaping import centered_rank
from gradflow.tensor import Tensor

__all__ = ["GuidedES", "OpenAIES"]

SHAPINGS = ("centered_rank", None)
# the batched forward's default memory for one chunk: perturbed parameters and activations
CHUNK_BUDGET_BYTES = 64 * 2**20


def _check_number(name: str, value: Any, low: float, high: float = math.inf,
                  low_open: bool = False) -> float:  # fmt: skip
    if isinstance(value, bool) or not isinstance(value, int | float | numpy.number):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if not math.isfinite(value) or bad_low or value > high:
        where = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high < math.inf
                                                          else "")  # fmt: skip
        raise ValueError(f"{name} must be finite and {where}, got {value!r}")
    return value


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | numpy.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_params(params: Any) -> list[Tensor]:
    if isinstance(params, Tensor):
        raise TypeError(
            "params must be an iterable of Tensors (model.parameters(), or a list of them), "
            "got a single Tensor: wrap it in a list"
        )
    if not isinstance(params, Iterable):
        raise TypeError(f"params must be an iterable of Tensors, got {type(params).__name__}")
    out: list[Tensor] = []
    seen: set[int] = set()
    for p in params:
        if isinstance(p, dict):
            raise TypeError("params: parameter groups (dicts) are for optimizers; give Tensors")
        if not isinstance(p, Tensor):
            raise TypeError(f"params must hold Tensors, got a {type(p).__name__}")
        if not p.is_floating_point():
            raise TypeError(f"params: can only evolve floating-point tensors, got {p.dtype}")
        if id(p) in seen:
            raise ValueError("params holds the same tensor twice")
        seen.add(id(p))
        out.append(p)
    if not out:
        raise ValueError("params is empty: give the tensors to evolve")
    devices = {str(p.device) for p in out}
    if len(devices) > 1:
        raise ValueError(f"params must all be on one device, got {sorted(devices)}")
    return out


def _value(result: Any, what: str) -> float:
    """A member's objective value as a float."""
    if isinstance(result, Tensor):
        if result.numel() != 1:
            raise ValueError(f"{what} must return one number, got a tensor of shape "
                             f"{tuple(result.shape)}")  # fmt: skip
        return float(result.item())
    if isinstance(result, numpy.ndarray) or hasattr(result, "get"):  # NumPy or CuPy
        if result.size != 1:
            raise ValueError(f"{what} must return one number, got an array of shape "
                             f"{tuple(result.shape)}")  # fmt: skip
        return float(result.reshape(-1)[0])
    try:
        return float(result)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return a number or a one-element Tensor, got "
                        f"{type(result).__name__}") from None  # fmt: skip


class OpenAIES:
    r"""OpenAI-ES (Salimans et al. 2017): a gradient estimate from seeded Gaussian perturbations,
    written into ``.grad`` of ``params`` so any gradflow optimizer applies it.

    Args:
        params: the tensors to evolve (``model.parameters()`` or a subset; the rest keep
            whatever gradient backward gives them).
        sigma: the perturbations' standard deviation. Smaller: a more local estimate, more
            noise relative to the signal; larger: a smoother objective.
        population_size: evaluations per estimate (an even number when antithetic: pairs).
            The estimate's variance falls as 1/population_size; each evaluation is one forward.
        antithetic: evaluate each noise vector at +sigma and -sigma (mirrored sampling).
        fitness_shaping: "centered_rank" (ranks over [-0.5, 0.5], the paper's choice: scale-free
            and robust; the gradient's scale is then not the objective's) or None (raw values;
            the estimate then approximates the objective's true gradient).
        weight_decay: adds ``weight_decay * param`` to the gradient, as the paper's L2 term.
        maximize: False: the objective is a loss and ``.grad`` gets its gradient estimate;
            True: a fitness to maximize (accuracy, reward) and ``.grad`` gets minus its gradient,
            so the optimizer's step ascends it (PyTorch optimizers' ``maximize`` convention).
        seed: the estimator's own random stream (None: a fresh one from the OS). Two
            estimators with the same seed and the same objective give the same gradients.
        distributed: split each population over the processes of gradflow.distributed's
            default group (only fitness values are exchanged; every rank must run the same
            estimate calls; rank 0's seed and parameters are broadcast when it is built, and
            the estimates then equal a single process's with that seed).
        max_batch: at most this many members per batched forward (default: as many as fit in
            64 MiB of perturbed weights and activations).

    ``estimate(objective)`` (loop form) calls ``objective()`` once per member with the
    parameters perturbed in place, under no_grad, and restores them exactly afterwards.
    ``estimate(objective, model=m, inputs=x)`` calls ``objective(m(x))``; when ``m`` is an
    ``nn.Sequential`` of Linear layers and elementwise activations (`batchable`) the whole
    population runs as one batched forward, and ``vectorized=True`` hands the objective all
    members' outputs at once, shape (members, \*output_shape), for P values back.

    >>> import gradflow
    >>> from gradflow import nn, optim
    >>> from gradflow.evolution import OpenAIES
    >>> model = nn.Linear(3, 1)
    >>> x, y = gradflow.randn(32, 3), gradflow.randn(32, 1)
    >>> es = OpenAIES(model.parameters(), sigma=0.05, population_size=20, seed=0)
    >>> opt = optim.Adam(model.parameters(), lr=0.05)
    >>> def mse(out):
    ...     return ((out - y) ** 2).mean()
    >>> before = float(mse(model(x)))
    >>> for step in range(30):
    ...     opt.zero_grad()
    ...     values = es.estimate(mse, model=model, inputs=x)  # 20 forwards, no backward
    ...     opt.step()
    >>> float(mse(model(x))) < before, tuple(values.shape)
    (True, (20,))
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        sigma: float = 0.1,
        population_size: int = 50,
        *,
        antithetic: bool = True,
        fitness_shaping: str | None = "centered_rank",
        weight_decay: float = 0.0,
        maximize: bool = False,
        seed: int | None = None,
        distributed: bool = False,
        max_batch: int | None = None,
    ):
        self.params = _check_params(params)
        self.sigma = _check_number("sigma", sigma, 0.0, low_open=True)
        self.population_size = _check_int("population_size", population_size, 2)
        self.antithetic = bool(antithetic)
        if self.antithetic and self.population_size % 2:
            raise ValueError(
                f"population_size must be even with antithetic=True (pairs of +noise and "
                f"-noise), got {population_size}"
            )
        if fitness_shaping not in SHAPINGS:
            raise ValueError(
                f"fitness_shaping must be 'centered_rank' or None, got {fitness_shaping!r}"
            )
        self.fitness_shaping = fitness_shaping
        self.weight_decay = _check_number("weight_decay", weight_decay, 0.0)
        self.maximize = bool(maximize)
        if max_batch is not None:
            max_batch = _check_int("max_batch", max_batch, 1)
        self.max_batch = max_batch
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        self.distributed = bool(distributed)
        self._rank, self._world = 0, 1
        if self.distributed:
            seed = self._join_world(seed)
        self._rng = numpy.random.Generator(numpy.random.PCG64(seed))
        self._offsets: dict[int, tuple[int, int]] = {}
        start = 0
        for p in self.params:
            self._offsets[id(p)] = (start, start + p.numel())
            start += p.numel()
        self.num_parameters = start
        float64 = any(p.dtype.itemsize == 8 for p in self.params)
        self._dtype = numpy.float64 if float64 else numpy.float32
        self._xp = get_array_module(self.params[0].array)
        self._kept: tuple | None = None  # (seeds, their noise) of a one-chunk population
        self.population_evaluations = 0  # members evaluated so far (by this process)
        self.generation = 0  # estimate() calls so far

    # -- the world ---------------------------------------------------------------------------

    def _join_world(self, seed: int | None) -> int:
        """Rank 0's seed and parameters for every rank (they must start from the same point);
        with the same seed the estimates equal a single process's."""
        from gradflow import distributed as dist

        if not dist.is_initialized():
            raise RuntimeError(
                "distributed=True needs gradflow.distributed.init_process_group() first (run "
                "the script under mpiexec -n N)"
            )
        self._rank, self._world = dist.get_rank(), dist.get_world_size()
        if seed is None:  # a fresh stream; rank 0's is the one used
            seed = int(numpy.random.SeedSequence().generate_state(1, numpy.uint64)[0] >> 1)
        xp = get_array_module(self.params[0].array)
        shared = Tensor._wrap(xp.asarray([seed], dtype=numpy.int64))
        dist.broadcast(shared, 0)
        for p in self.params:
            dist.broadcast(p.data, 0)
        return int(shared.array[0])

    # -- noise -------------------------------------------------------------------------------

    def _draws(self) -> int:
        """Noise vectors per estimate: one per pair when antithetic, else one per member."""
        return self.population_size // 2 if self.antithetic else self.population_size

    def _direction(self, seed: int) -> Any:
        """The perturbation direction u drawn from ``seed`` (n,), on the parameters' device."""
        z = numpy.random.Generator(numpy.random.PCG64(seed)).standard_normal(
            self.num_parameters, dtype=self._dtype
        )
        return self._xp.asarray(z)

    def _members(self, seeds: numpy.ndarray) -> list[tuple[int, int, float]]:
        """(member index, draw index, sign) of every member, in population order: antithetic
        pairs side by side (+u_i, -u_i)."""
        if self.antithetic:
            return [(2 * i + k, i, 1.0 - 2.0 * k) for i in range(len(seeds)) for k in (0, 1)]
        return [(i, i, 1.0) for i in range(len(seeds))]

    # -- the estimate ------------------------------------------------------------------------

    def estimate(
        self,
        objective: Callable[..., Any],
        *,
        model: nn.Module | None = None,
        inputs: Any = None,
        vectorized: bool = False,
        mix: float | None = None,
    ) -> Tensor:
        """Evaluate a population, write the gradient estimate into ``.grad`` and return the raw
        objective values (float64, shape (population_size,), antithetic pairs side by side).

        ``.grad`` accumulates as after backward (``grad += g``); ``mix=w`` writes
        ``(1 - w) * grad + w * g`` instead, blending a backprop gradient already there with
        the ES estimate (call ``loss.backward()`` first).
        """
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        if (model is None) != (inputs is None):
            raise ValueError(
                "model= and inputs= go together: the objective then receives model(inputs) "
                "(without them it is called with no arguments)"
            )
        if model is not None and not callable(model):
            raise TypeError(f"model must be a Module (callable), got {type(model).__name__}")
        if vectorized and model is None:
            raise ValueError("vectorized=True needs model= and inputs=: the objective then gets "
                             "every member's output at once")  # fmt: skip
        if mix is not None:
            mix = _check_number("mix", mix, 0.0, 1.0)
            missing = [i for i, p in enumerate(self.params) if p.grad is None]
            if missing:
                raise RuntimeError(
                    f"mix={mix:g} blends the ES estimate with the gradient already in .grad, but "
                    f"parameter {missing[0]} has none: call loss.backward() before estimate()"
                )
        seeds = self._rng.integers(0, 2**63 - 1, size=self._draws(), dtype=numpy.int64)
        values = numpy.zeros(self.population_size)
        forward = None if model is None else BatchedForward.for_model(model, self._offsets)
        with no_grad():
            if forward is not None:
                self._evaluate_batched(objective, forward, model, inputs, vectorized, seeds,
                                       values)  # fmt: skip
            else:
                self._evaluate_loop(objective, model, inputs, vectorized, seeds, values)
        if self.distributed and self._world > 1:
            values = self._gather(values)
        self.generation += 1
        self._write_grad(self._gradient(seeds, values), mix)
        return Tensor._wrap(values)

    def _mine(self, members: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
        """This process's share of the members: whole draws (pairs stay together)."""
        if not self.distributed or self._world == 1:
            return members
        return [m for m in members if m[1] % self._world == self._rank]

    def _evaluate_loop(self, objective, model, inputs, vectorized, seeds, values) -> None:
        originals = [p.array.copy() for p in self.params]
        direction, draw = None, -1
        try:
            for index, d, sign in self._mine(self._members(seeds)):
                if d != draw:
                    direction, draw = self._direction(int(seeds[d])), d
                self._perturb(originals, direction, sign * self.sigma)
                if model is None:
                    values[index] = _value(objective(), "objective()")
                elif vectorized:  # one member at a time: a population of one
                    got = objective(model(inputs).unsqueeze(0))
                    values[index] = _value(got, "vectorized objective(outputs)")
                else:
                    values[index] = _value(objective(model(inputs)), "objective(output)")
                self.population_evaluations += 1
        finally:
            for p, original in zip(self.params, originals, strict=True):
                p.array[...] = original

    def _perturb(self, originals: list[Any], direction: Any, scale: float) -> None:
        for p, original in zip(self.params, originals, strict=True):
            start, stop = self._offsets[id(p)]
            p.array[...] = original + scale * direction[start:stop].reshape(original.shape)

    def _chunk(self, model: nn.Module, inputs: Any) -> int:
        """Members per batched forward: max_batch, or what fits CHUNK_BUDGET_BYTES."""
        if self.max_batch is not None:
            size = self.max_batch
        else:
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            rows = max(1, inputs.numel() // linears[0].in_features)  # samples at the first
            widths = sum(m.out_features for m in linears)
            itemsize = numpy.dtype(self._dtype).itemsize
            per_member = itemsize * (2 * self.num_parameters + 3 * rows * widths)
            size = max(1, CHUNK_BUDGET_BYTES // per_member)
        if self.antithetic:
            size = max(2, size - size % 2)  # whole pairs
        return size

    def _evaluate_batched(
        self, objective, forward, model, inputs, vectorized, seeds, values
    ) -> None:
        base = self._xp.concatenate([p.array.reshape(-1).astype(self._dtype, copy=False)
                                     for p in self.params])  # fmt: skip
        members = self._members(seeds)
        mine = self._mine(members)
        chunk = self._chunk(model, inputs)
        # the whole population in one chunk: its noise is kept for the gradient (a GEMV
        # instead of drawing every vector again, which costs as much as the forwards)
        keep = len(mine) == len(members) <= chunk
        for first in range(0, len(mine), chunk):
            part = mine[first : first + chunk]
            draws = sorted({d for _, d, _ in part})
            directions = self._xp.stack([self._direction(int(seeds[d])) for d in draws])
            row_of = {d: i for i, d in enumerate(draws)}
            signs = self._xp.asarray([sign * self.sigma for _, _, sign in part], self._dtype)
            rows = [row_of[d] for _, d, _ in part]
            perturbed = directions[rows] * signs[:, None] + base
            if keep:
                self._kept = (seeds, directions)
            dtype = self.params[0].array.dtype
            outputs = forward(inputs, perturbed.astype(dtype, copy=False))
            if vectorized:
                got = objective(outputs)
                got = got.array if isinstance(got, Tensor) else got
                got = numpy.asarray(got.get() if hasattr(got, "get") else got, dtype=float)
                if got.shape != (len(part),):
                    raise ValueError(
                        f"vectorized objective(outputs) must return one value per member, shape "
                        f"({len(part)},), got shape {got.shape}"
                    )
                for row, (index, _, _) in enumerate(part):
                    values[index] = got[row]
            else:
                for row, (index, _, _) in enumerate(part):
                    values[index] = _value(objective(outputs[row]), "objective(output)")
            self.population_evaluations += len(part)

    def _gather(self, values: numpy.ndarray) -> numpy.ndarray:
        """Every rank's share of the values, on every rank (each filled its own; sum)."""
        from gradflow import distributed as dist

        mine = numpy.zeros_like(values)
        for index, _, _ in self._mine(self._members(numpy.zeros(self._draws()))):
            mine[index] = values[index]
        total = Tensor._wrap(self._xp.asarray(mine))
        dist.all_reduce(total)
        out = total.array
        return numpy.asarray(out.get() if hasattr(out, "get") else out)

    def _shaped(self, values: numpy.ndarray) -> numpy.ndarray:
        """The weights the noise is summed with: centered ranks, or the raw values."""
        bad = ~numpy.isfinite(values)
        if self.fitness_shaping is None:
            if bad.any():
                raise ValueError(
                    f"the objective returned {int(bad.sum())} non-finite value(s) of "
                    f"{values.size}; with fitness_shaping=None they can't be used: use "
                    "fitness_shaping='centered_rank' (which ranks them worst) or fix the objective"
                )
            return values
        worst = -math.inf if self.maximize else math.inf
        return centered_rank(numpy.where(bad, worst, values))

    def _gradient(self, seeds: numpy.ndarray, values: numpy.ndarray) -> Any:
        """g, the estimated gradient of the objective (flat, on the device), from the seeds."""
        weights = self._shaped(values)
        if self.antithetic:
            coefficients = weights[0::2] - weights[1::2]
        else:
            coefficients = weights - weights.mean()  # a baseline: lower variance, same mean
        scale = 1.0 / (self.population_size * self.sigma)
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] is seeds:  # this estimate's noise, in draw order
            return self._xp.asarray(coefficients * scale, dtype=self._dtype) @ kept[1]
        g = self._xp.zeros(self.num_parameters, dtype=self._dtype)
        for d, c in enumerate(coefficients):
            if c != 0.0:
                g += float(c) * self._direction(int(seeds[d]))
        g *= scale
        return g

    def _write_grad(self, g: Any, mix: float | None) -> None:
        if self.maximize:
            g = -g
        for p in self.params:
            start, stop = self._offsets[id(p)]
            step = g[start:stop].reshape(p.shape).astype(p.array.dtype, copy=False)
            if self.weight_decay:
                step = step + self.weight_decay * p.array
            if mix is not None:
                p.grad.array[...] = (1.0 - mix) * p.grad.array + mix * step
            elif p.grad is None:
                p.grad = Tensor._wrap(step.copy())
            else:
                p.grad.array[...] += step

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The random stream and counters: ``load_state_dict`` resumes the same sequence."""
        return {
            "rng": self._rng.bit_generator.state,
            "generation": self.generation,
            "population_evaluations": self.population_evaluations,
        }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "rng" not in state:
            raise ValueError("load_state_dict: expected a dict from state_dict() with key 'rng'")
        self._rng.bit_generator.state = state["rng"]
        self.generation = int(state.get("generation", 0))
        self.population_evaluations = int(state.get("population_evaluations", 0))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_parameters} parameters, sigma={self.sigma:g}, "
            f"population_size={self.population_size}, antithetic={self.antithetic}, "
            f"fitness_shaping={self.fitness_shaping!r}, maximize={self.maximize})"
        )


class GuidedES(OpenAIES):
    r"""Guided ES (Maheswaranathan et al. 2019): OpenAI-ES whose perturbations lean towards the
    subspace of recent surrogate gradients, e.g. backprop through truncated BPTT or through a
    smooth stand-in for a non-differentiable piece.

    ``add_surrogate()`` records the parameters' current ``.grad`` (or the given gradients) as a
    guiding direction; the latest ``subspace_dim`` are kept. Perturbations are drawn from
    N(0, alpha*I + (1 - alpha)*(n/k)*U U^T), U an orthonormal basis of the k recorded directions
    (the paper's covariance scaled by n, so alpha=1 is plain OpenAI-ES with the same sigma, and a
    perturbation's expected squared length is n for every alpha). Before any surrogate is
    recorded it is plain OpenAI-ES. The estimate is unbiased for the covariance-weighted
    gradient: a biased surrogate can steer the search but not mislead the step's expectation
    beyond that weighting.

    Args: as OpenAIES, plus ``alpha`` (0..1: the weight of the full space) and ``subspace_dim``
    (k, the number of surrogate gradients kept).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        sigma: float = 0.1,
        population_size: int = 50,
        *,
        alpha: float = 0.5,
        subspace_dim: int = 1,
        **kwargs: Any,
    ):
        super().__init__(params, sigma, population_size, **kwargs)
        self.alpha = _check_number("alpha", alpha, 0.0, 1.0)
        self.subspace_dim = _check_int("subspace_dim", subspace_dim, 1)
        self._surrogates: list[Any] = []
        self._basis: Any = None  # (n, k) orthonormal

    def add_surrogate(self, gradients: Iterable[Any] | None = None) -> None:
        """Record a surrogate gradient: ``gradients`` (one Tensor or array per parameter, in
        ``params`` order), or None for the parameters' current ``.grad``."""
        if gradients is None:
            if all(p.grad is None for p in self.params):
                raise RuntimeError(
                    "add_surrogate(): no parameter has a .grad; run a surrogate loss's "
                    "backward() first or pass the gradients"
                )
            gradients = [p.grad for p in self.params]
        gradients = list(gradients)
        if len(gradients) != len(self.params):
            raise ValueError(
                f"add_surrogate: got {len(gradients)} gradients for {len(self.params)} parameters"
            )
        flat = self._xp.zeros(self.num_parameters, dtype=self._dtype)
        for p, grad in zip(self.params, gradients, strict=True):
            if grad is None:
                continue
            array = grad.array if isinstance(grad, Tensor) else self._xp.asarray(grad)
            if tuple(array.shape) != tuple(p.shape):
                raise ValueError(
                    f"add_surrogate: a gradient of shape {tuple(array.shape)} for a parameter "
                    f"of shape {tuple(p.shape)}"
                )
            start, stop = self._offsets[id(p)]
            flat[start:stop] = array.reshape(-1)
        if not bool(self._xp.isfinite(flat).all()):
            raise ValueError("add_surrogate: the gradient holds nan or inf")
        self._surrogates = [*self._surrogates, flat][-self.subspace_dim :]
        self._basis = self._orthonormal_basis()

    def _orthonormal_basis(self) -> Any:
        """An orthonormal basis of the recorded surrogates (zero or dependent ones dropped)."""
        stacked = self._xp.stack(self._surrogates, axis=1).astype(numpy.float64)
        q, r = self._xp.linalg.qr(stacked)
        diagonal = self._xp.abs(self._xp.diagonal(r))
        scale = float(diagonal.max()) if diagonal.size else 0.0
        keep = diagonal > 1e-10 * max(scale, 1e-300)
        if not bool(keep.any()):
            return None
        return q[:, keep].astype(self._dtype)

    def _direction(self, seed: int) -> Any:
        if self._basis is None:
            return super()._direction(seed)
        k = self._basis.shape[1]
        rng = numpy.random.Generator(numpy.random.PCG64(seed))
        z = self._xp.asarray(rng.standard_normal(self.num_parameters, dtype=self._dtype))
        zk = self._xp.asarray(rng.standard_normal(k, dtype=self._dtype))
        full = math.sqrt(self.alpha)
        sub = math.sqrt((1.0 - self.alpha) * self.num_parameters / k)
        return full * z + sub * (self._basis @ zk)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["surrogates"] = [numpy.asarray(s.get() if hasattr(s, "get") else s)
                               for s in self._surrogates]  # fmt: skip
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._surrogates = [self._xp.asarray(s, dtype=self._dtype)
                            for s in state.get("surrogates", [])]  # fmt: skip
        self._basis = self._orthonormal_basis() if self._surrogates else None
