import copy, random
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0); random.seed(0)
SOS, EOS, V, H, MAXLEN = 0, 1, 12, 32, 7

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, H)
        self.gru = nn.GRU(H, H, batch_first=True)
    def forward(self, x):
        return self.gru(self.embedding(x))

class AttnDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, H)
        self.Wa, self.Ua, self.Va = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, 1)
        self.cell = nn.GRUCell(2 * H, H)
        self.out = nn.Linear(H, V)
    def forward(self, enc_out, hidden, target=None, tf_ratio=0.5):
        B = enc_out.size(0)
        inp = torch.empty(B, dtype=torch.long, device=enc_out.device).fill_(SOS)
        h = hidden.squeeze(0)
        outs, attns = [], []
        for t in range(MAXLEN):
            scores = self.Va(torch.tanh(self.Wa(h).unsqueeze(1) + self.Ua(enc_out)))  # B,T,1
            w = F.softmax(scores.squeeze(2), dim=-1).unsqueeze(1)                      # B,1,T
            ctxv = torch.bmm(w, enc_out).squeeze(1)
            h = self.cell(torch.cat((self.embedding(inp), ctxv), dim=1), h)
            logit = self.out(h)
            outs.append(logit.unsqueeze(1)); attns.append(w)
            if target is not None and random.random() < tf_ratio:
                inp = target[:, t]
            else:
                _, topi = logit.topk(1)
                inp = topi.squeeze(-1).detach()
        return F.log_softmax(torch.cat(outs, dim=1), dim=-1), torch.cat(attns, dim=1)

def batch(n):  # reverse a sequence of digits 2..11, then EOS
    src = torch.randint(2, V, (n, MAXLEN - 1))
    tgt = torch.cat([src.flip(1), torch.full((n, 1), EOS, dtype=torch.long)], dim=1)
    return src, tgt

enc, dec = Encoder(), AttnDecoder()
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.Adam(params, lr=5e-3)
ema_dec = copy.deepcopy(dec)
for p in ema_dec.parameters(): p.requires_grad_(False)
crit = nn.NLLLoss()
for it in range(150):
    src, tgt = batch(32)
    enc_out, hid = enc(src)
    logp, _ = dec(enc_out, hid, tgt)
    loss = crit(logp.view(-1, V), tgt.view(-1))
    opt.zero_grad(); loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    with torch.no_grad():
        for ep, p in zip(ema_dec.parameters(), dec.parameters()):
            ep.mul_(0.9).add_(p.detach(), alpha=0.1)
    if it % 50 == 0: print(f"seq2seq it {it} loss {loss.item():.4f}")
with torch.no_grad():
    src, tgt = batch(100)
    logp, attn = ema_dec(*enc(src))
    print(f"seq2seq exact-match {(logp.argmax(-1) == tgt).all(1).float().mean():.2f} tok-acc {(logp.argmax(-1) == tgt).float().mean():.2f} attn {tuple(attn.shape)}")

# --- GNN message passing on a random graph, node classification ---
N, E = 60, 240
edge_index = torch.randint(0, N, (2, E))
labels = torch.randint(0, 3, (N,))
feat = F.one_hot(labels, 3).float() + 0.8 * torch.randn(N, 3)
class GCN(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
    def forward(self, x, ei):
        src, dst = ei
        deg = torch.bincount(dst, minlength=x.size(0)).float().clamp(min=1)
        msg = self.lin(x)[src]
        agg = torch.zeros(x.size(0), msg.size(1)).index_add_(0, dst, msg)
        agg2 = torch.zeros_like(agg).scatter_add_(0, dst.unsqueeze(1).expand_as(msg), msg)
        assert torch.allclose(agg, agg2, atol=1e-5)
        return agg / deg.unsqueeze(1) + self.lin(x)
g1, g2 = GCN(3, 16), GCN(16, 3)
gopt = torch.optim.Adam(list(g1.parameters()) + list(g2.parameters()), lr=0.02)
for it in range(100):
    out = g2(F.relu(g1(feat, edge_index)), edge_index)
    l = F.cross_entropy(out, labels)
    gopt.zero_grad(); l.backward(); gopt.step()
print(f"gcn loss {l.item():.4f} acc {(out.argmax(1) == labels).float().mean():.2f}")

# --- knowledge distillation ---
teacher = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 3)); student = nn.Linear(3, 3)
topt = torch.optim.Adam(teacher.parameters(), 1e-2)
for _ in range(100):
    topt.zero_grad(); F.cross_entropy(teacher(feat), labels).backward(); topt.step()
teacher.eval()
sopt = torch.optim.SGD(student.parameters(), lr=0.5)
kl = nn.KLDivLoss(reduction="batchmean"); T = 2.0
for it in range(100):
    with torch.no_grad(): t_logits = teacher(feat)
    s_logits = student(feat)
    loss = kl(F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1)) * T * T + 0.5 * F.cross_entropy(s_logits, labels)
    sopt.zero_grad(); loss.backward(); sopt.step()
vec = nn.utils.parameters_to_vector(student.parameters())
print(f"distill loss {loss.item():.4f} student acc {(student(feat).argmax(1) == labels).float().mean():.2f} nparams {vec.numel()}")
