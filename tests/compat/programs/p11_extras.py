import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler
from torch.nn.utils.rnn import pad_sequence

torch.manual_seed(0)
checks = {}
def check(name):
    def deco(fn):
        try:
            checks[name] = fn()
        except Exception as e:
            checks[name] = f"FAIL {type(e).__name__}: {str(e)[:100]}"
        return fn
    return deco

@check("next_functions")
def _():
    x = torch.ones(2, requires_grad=True); loss = (x * 2).sum()
    nf = loss.grad_fn.next_functions
    return len(nf), nf[0][0].next_functions[0][0].variable is x
@check("grad_fn_name")
def _():
    return torch.ones(2, requires_grad=True).sum().grad_fn.name()
@check("pad_sequence")
def _():
    return pad_sequence([torch.ones(3), torch.ones(1)], batch_first=True, padding_value=-1).tolist()
@check("weighted_sampler")
def _():
    ds = TensorDataset(torch.arange(10).float(), torch.arange(10))
    s = WeightedRandomSampler([0.1] * 5 + [1.0] * 5, num_samples=20, replacement=True)
    return sum(len(b[0]) for b in DataLoader(ds, batch_size=4, sampler=s))
@check("collate_fn")
def _():
    def collate(batch):
        xs, ys = zip(*batch)
        return torch.stack(xs), torch.tensor(ys)
    return [tuple(x.shape) for x, _ in DataLoader(list(zip(torch.randn(5, 2), range(5))), batch_size=2, collate_fn=collate)]
@check("apply_init")
def _():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    def init(mod):
        if type(mod) == nn.Linear:
            nn.init.xavier_uniform_(mod.weight); mod.bias.data.fill_(0.01)
    m.apply(init)
    nn.init.orthogonal_(m[2].weight)
    return round(m[0].bias.sum().item(), 4)
@check("freeze_and_param_groups")
def _():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    for p in m[0].parameters(): p.requires_grad_(False)
    opt = torch.optim.SGD(filter(lambda p: p.requires_grad, m.parameters()), lr=0.1)
    opt.add_param_group({"params": m[0].parameters(), "lr": 0.01})
    m(torch.randn(2, 3)).sum().backward()
    opt.step()
    return len(opt.param_groups), m[0].weight.grad is None
@check("lambda_multistep")
def _():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s1 = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9 ** e)
    lrs = []
    for _ in range(3): opt.step(); s1.step(); lrs.append(round(opt.param_groups[0]["lr"], 4))
    sd = s1.state_dict()
    return lrs, "last_epoch" in sd
@check("warmup_chain")
def _():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    s = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[2])
    out = []
    for _ in range(5): opt.step(); s.step(); out.append(round(opt.param_groups[0]["lr"], 4))
    return out
@check("embedding_pretrained")
def _():
    e = nn.Embedding.from_pretrained(torch.eye(4), freeze=True, padding_idx=0)
    return e(torch.tensor([[1, 2]])).shape, e.weight.requires_grad
@check("scatter_onehot")
def _():
    y = torch.tensor([0, 2, 1])
    oh = torch.zeros(3, 3).scatter_(1, y.unsqueeze(1), 1.0)
    return torch.equal(oh, F.one_hot(y, num_classes=3).float()), oh.argmax(1).tolist()
@check("einsum_attention_mask")
def _():
    q = torch.randn(2, 4, 8); k = torch.randn(2, 4, 8)
    att = torch.einsum("bqd,bkd->bqk", q, k) / math.sqrt(8)
    mask = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
    return round(att.sum().item(), 3), round(att[0, 0, 1].item(), 3)
@check("multinomial_sampling")
def _():
    probs = F.softmax(torch.randn(2, 5) / 0.8, dim=-1)
    nxt = torch.multinomial(probs, num_samples=1)
    return tuple(nxt.shape), nxt.dtype == torch.long
@check("tensor_misc")
def _():
    x = torch.arange(12, dtype=torch.float32).view(3, 4)
    a = x.new_zeros(2).tolist(), x.expand_as(torch.empty(2, 3, 4)).shape, x.t().contiguous().is_contiguous()
    b = torch.where(x > 5, x, 0.0).sum().item(), x.clamp_(min=1).min().item(), x.numel(), x.dim()
    c = torch.chunk(x, 2, dim=1)[1].shape, x.unbind(0)[0].tolist(), x.masked_select(x > 9).tolist()
    return a, b, c
@check("gather_log_probs")
def _():
    logits = torch.randn(4, 6, requires_grad=True); acts = torch.tensor([1, 0, 5, 2])
    lp = F.log_softmax(logits, -1).gather(1, acts.unsqueeze(-1)).squeeze(-1)
    lp.mean().backward()
    return tuple(logits.grad.shape)
@check("moduledict_paramdict")
def _():
    md = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Identity()})
    pd = nn.ParameterDict({"w": nn.Parameter(torch.ones(2))})
    pl = nn.ParameterList([nn.Parameter(torch.ones(1)) for _ in range(2)])
    return sorted(md.keys()), len(list(pd.parameters())), len(pl)
@check("set_to_none_and_grad_hook")
def _():
    w = torch.randn(3, requires_grad=True)
    h = w.register_hook(lambda g: g * 0.5)
    (w ** 2).sum().backward(); g1 = w.grad.clone(); h.remove()
    w.grad = None
    (w ** 2).sum().backward()
    return torch.allclose(g1 * 2, w.grad)
@check("numpy_roundtrip")
def _():
    a = np.random.rand(3, 2)
    t = torch.from_numpy(a); t2 = torch.as_tensor(a, dtype=torch.float32)
    return t.dtype == torch.float64, t2.dtype == torch.float32, t.numpy() is not None, torch.tensor(a[0]).tolist() == a[0].tolist()
@check("label_smoothing_weights")
def _():
    l = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1, reduction="mean")
    return round(l(torch.tensor([[1.0, 2.0, 0.5], [0.1, 0.2, 3.0]]), torch.tensor([1, 2])).item(), 4)
@check("bce_with_logits_posweight")
def _():
    l = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0]))
    return round(l(torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 0.0]])).item(), 4)
@check("state_dict_iteration")
def _():
    m = nn.BatchNorm1d(3)
    return [(k, tuple(v.shape), str(v.dtype)) for k, v in m.state_dict().items()][-1]
@check("optimizer_state_tensors")
def _():
    p = nn.Parameter(torch.ones(2)); opt = torch.optim.Adam([p]); p.grad = torch.ones(2); opt.step()
    st = opt.state[p]
    return sorted(st.keys()), tuple(st["exp_avg"].shape)
@check("clip_value_and_norm_type")
def _():
    m = nn.Linear(3, 1); m(torch.randn(4, 3)).sum().backward()
    torch.nn.utils.clip_grad_value_(m.parameters(), 0.1)
    n = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0, norm_type=float("inf"))
    return round(float(n), 4) <= 0.1
@check("detach_inplace_item_types")
def _():
    t = torch.tensor([1.5]); i = torch.tensor(3)
    return type(t.item()).__name__, type(i.item()).__name__, int(i), float(t), bool(torch.tensor(True))
@check("argmax_keepdim_topk_indices")
def _():
    x = torch.tensor([[1., 5., 3.], [7., 2., 9.]])
    return x.argmax(dim=1, keepdim=True).tolist(), x.topk(2).indices.tolist(), x.max().item(), torch.max(x, 0)[1].tolist()
@check("cumsum_flip_returns")
def _():
    r = torch.tensor([1., 0., 1.])
    return torch.flip(torch.cumsum(torch.flip(r, [0]), 0), [0]).tolist()
for k, v in checks.items():
    print(f"{k}: {v}")
