"""``gradflow.backends.cuda``: PyTorch's CUDA math switches, accepted and without effect
(gradflow's GEMMs go through cuBLAS in the tensors' own dtype; no TF32 switch)."""


class _MatmulFlags:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    return True
