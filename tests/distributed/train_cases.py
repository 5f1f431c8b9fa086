"""Rank script for tests/distributed/test_train.py, run as ``mpiexec -n 2 python
train_cases.py CASE DIR`` (no mpi4py runner: gradflow.training ends the job itself when a rank
raises).

- ``cli DIR``: ``gradflow train mlp`` through the command line's main().
- ``raise DIR``: rank 1 raises in its first epoch; rank 0 would wait for it in a collective.
"""

import sys

from gradflow import cli, training

case, folder = sys.argv[1], sys.argv[2]
if case == "raise":
    train_epoch = training._train_epoch

    def failing(*args, **kwargs):
        from gradflow import distributed

        if distributed.get_rank() == 1:
            raise RuntimeError("rank 1 fails on purpose")
        return train_epoch(*args, **kwargs)

    training._train_epoch = failing
status = cli.main(["train", "mlp", "--epochs", "2", "--no-progress", "--checkpoint",
                   f"{folder}/run.ckpt"])  # fmt: skip
sys.exit(status)
