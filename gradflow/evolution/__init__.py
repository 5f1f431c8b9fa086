"""Evolution strategies beside backpropagation: gradient estimates from a population of seeded
perturbations, written into ``param.grad`` so every gradflow optimizer applies them.

Use them where backprop can't reach or can't be trusted: a non-differentiable objective
(accuracy, a hard threshold, a discrete choice, a simulator's reward), a model with a
non-differentiable piece (evolve the parameters before it, backprop the rest), or gradients
that are biased (truncated BPTT: let them guide the search with `GuidedES`). Each estimate costs
``population_size`` forward passes and no backward; its variance falls as 1/population_size.

- `OpenAIES`: Salimans et al. 2017 (antithetic pairs, centered-rank shaping, weight decay).
- `GuidedES`: Maheswaranathan et al. 2019 (perturbations leaning towards recent surrogate
  gradients).
- `centered_rank`: the fitness shaping; `batchable`: whether a model runs a population batched.

docs/evolution.md has the guide, a worked example per mode and the measured costs.
"""

from gradflow.evolution.population import batchable
from gradflow.evolution.shaping import centered_rank
from gradflow.evolution.strategies import GuidedES, OpenAIES

__all__ = ["GuidedES", "OpenAIES", "batchable", "centered_rank"]
