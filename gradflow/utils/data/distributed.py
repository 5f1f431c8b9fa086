"""torch.utils.data.distributed's name: DistributedSampler."""

from gradflow.data.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
