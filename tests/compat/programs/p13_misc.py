import math
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
checks = {}
def check(name):
    def deco(fn):
        try: checks[name] = fn()
        except Exception as e: checks[name] = f"FAIL {type(e).__name__}: {str(e)[:110]}"
    return deco

@check("affine_grid_sample")
def _():
    theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]).requires_grad_()
    grid = F.affine_grid(theta, (1, 1, 4, 4), align_corners=False)
    out = F.grid_sample(torch.arange(16.).view(1, 1, 4, 4), grid, align_corners=False)
    out.sum().backward()
    return round(out.sum().item(), 3), tuple(theta.grad.shape)
@check("weight_norm")
def _():
    m = nn.utils.weight_norm(nn.Linear(3, 2))
    return sorted(n for n, _ in m.named_parameters())
@check("parametrizations_weight_norm")
def _():
    m = nn.utils.parametrizations.weight_norm(nn.Linear(3, 2))
    return tuple(m.weight.shape)
@check("spectral_norm")
def _():
    m = nn.utils.spectral_norm(nn.Linear(4, 4)); m(torch.randn(2, 4))
    return tuple(m.weight.shape)
@check("roll_reflect_pixelshuffle")
def _():
    x = torch.arange(16.).view(1, 4, 2, 2)
    return torch.roll(torch.arange(4), 1).tolist(), tuple(F.pad(x, (1, 1, 1, 1), mode="reflect").shape), tuple(nn.PixelShuffle(2)(x).shape)
@check("normal_rsample_kl")
def _():
    from torch.distributions import Normal, kl_divergence
    mu = torch.zeros(3, requires_grad=True); q = Normal(mu, torch.ones(3)); z = q.rsample()
    z.sum().backward()
    return round(kl_divergence(Normal(torch.ones(1), torch.ones(1)), Normal(torch.zeros(1), torch.ones(1))).item(), 3), mu.grad.tolist()
@check("sparse_coo")
def _():
    i = torch.tensor([[0, 1], [1, 0]]); s = torch.sparse_coo_tensor(i, torch.tensor([2., 3.]), (2, 2))
    return torch.sparse.mm(s, torch.ones(2, 1)).tolist()
@check("bilinear_prelu_embbag")
def _():
    b = nn.Bilinear(3, 4, 2)(torch.randn(5, 3), torch.randn(5, 4))
    p = nn.PReLU()(torch.tensor([-1.0, 2.0]))
    eb = nn.EmbeddingBag(10, 3, mode="mean")(torch.tensor([1, 2, 4, 5]), torch.tensor([0, 2]))
    return tuple(b.shape), p.tolist(), tuple(eb.shape)
@check("transformer")
def _():
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, batch_first=True)
    return tuple(nn.TransformerEncoder(layer, 2)(torch.randn(2, 5, 8)).shape)
@check("mha")
def _():
    m = nn.MultiheadAttention(8, 2, batch_first=True); x = torch.randn(2, 5, 8)
    o, w = m(x, x, x, need_weights=True)
    return tuple(o.shape), tuple(w.shape)
@check("sdpa")
def _():
    q = torch.randn(2, 2, 5, 4)
    return tuple(F.scaled_dot_product_attention(q, q, q, is_causal=True).shape)
@check("lstmcell_loop_and_init_hidden")
def _():
    cell = nn.LSTMCell(3, 5); h = c = torch.zeros(2, 5)
    for t in range(4): h, c = cell(torch.randn(2, 3), (h, c))
    return tuple(h.shape)
@check("ctc")
def _():
    lp = torch.randn(10, 2, 5).log_softmax(2).requires_grad_()
    l = F.ctc_loss(lp, torch.randint(1, 5, (2, 3)), torch.full((2,), 10, dtype=torch.long), torch.full((2,), 3, dtype=torch.long))
    l.backward(); return round(l.item(), 2) > 0
@check("unfold_fold")
def _():
    x = torch.randn(1, 2, 4, 4)
    cols = F.unfold(x, kernel_size=2, stride=2)
    return tuple(cols.shape), torch.allclose(F.fold(cols, (4, 4), kernel_size=2, stride=2), x)
@check("tensor_unfold_stride")
def _():
    return tuple(torch.arange(10.).unfold(0, 4, 2).shape)
@check("nn_functional_misc")
def _():
    x = torch.randn(2, 3, 8, 8)
    return (tuple(F.adaptive_max_pool2d(x, 2).shape), tuple(F.avg_pool2d(x, 2, ceil_mode=True).shape),
            tuple(F.instance_norm(x).shape), tuple(nn.InstanceNorm2d(3, affine=True)(x).shape),
            tuple(F.dropout2d(x, 0.5, training=True).shape), tuple(nn.Upsample(size=(5, 5), mode="nearest")(x).shape),
            tuple(F.local_response_norm(x, 2).shape))
@check("channels_last_and_amp_noops")
def _():
    x = torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last)
    m = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    return tuple(m(x).shape), x.is_contiguous(memory_format=torch.channels_last)
@check("swa_ema")
def _():
    from torch.optim.swa_utils import AveragedModel
    m = nn.Linear(2, 2); ema = AveragedModel(m, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9))
    ema.update_parameters(m); return tuple(ema.module.weight.shape)
@check("register_parametrization")
def _():
    import torch.nn.utils.parametrize as P
    class Sym(nn.Module):
        def forward(self, X): return X.triu() + X.triu(1).transpose(-1, -2)
    m = nn.Linear(3, 3); P.register_parametrization(m, "weight", Sym())
    return torch.allclose(m.weight, m.weight.T)
@check("checkpoint")
def _():
    from torch.utils.checkpoint import checkpoint
    lin = nn.Linear(3, 3); x = torch.randn(2, 3, requires_grad=True)
    checkpoint(lin, x, use_reentrant=False).sum().backward(); return tuple(x.grad.shape)
@check("tensorboard_free_hparams")
def _():
    return torch.__version__ is not None, isinstance(torch.finfo(torch.float32).eps, float), torch.iinfo(torch.int64).max
for k, v in checks.items(): print(f"{k}: {v}")
