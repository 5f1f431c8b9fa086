import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
NCLS, D = 6, 16
centers = torch.randn(NCLS, D) * 2

def sample(n):
    lab = torch.randint(0, NCLS, (n,))
    return centers[lab] + torch.randn(n, D), lab

class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 8))
    def forward(self, x):
        return F.normalize(self.net(x), p=2, dim=1)

def mine_triplets(emb, lab):
    with torch.no_grad():
        dist = torch.cdist(emb, emb)
        same = lab.unsqueeze(0) == lab.unsqueeze(1)
        pos_d = dist.masked_fill(~same, float("-inf"))
        pos_d.fill_diagonal_(float("-inf"))
        neg_d = dist.masked_fill(same, float("inf"))
        p_idx = pos_d.argmax(dim=1)
        n_idx = neg_d.argmin(dim=1)
    return p_idx, n_idx

model = Embedder()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
triplet = nn.TripletMarginLoss(margin=0.3, p=2)
cos_loss = nn.CosineEmbeddingLoss(margin=0.1)
for step in range(120):
    x, lab = sample(96)
    emb = model(x)
    p_idx, n_idx = mine_triplets(emb, lab)
    l1 = triplet(emb, emb[p_idx], emb[n_idx])
    perm = torch.randperm(len(lab))
    target = torch.where(lab == lab[perm], torch.ones(len(lab)), -torch.ones(len(lab)))
    l2 = cos_loss(emb, emb[perm], target)
    loss = l1 + 0.5 * l2
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 30 == 0:
        print(f"step {step} triplet {l1.item():.4f} cos {l2.item():.4f}")

model.eval()
with torch.no_grad():
    gx, glab = sample(300)
    qx, qlab = sample(100)
    g, q = model(gx), model(qx)
    d = torch.cdist(q, g, p=2.0)
    vals, idx = torch.topk(d, k=5, dim=1, largest=False)
    r1 = (glab[idx[:, 0]] == qlab).float().mean().item()
    r5 = (glab[idx] == qlab.unsqueeze(1)).any(dim=1).float().mean().item()
    sims = q @ g.T
    top_s, top_i = sims.topk(1, dim=-1)
    cos = F.cosine_similarity(q[:5], g[top_i[:5, 0]], dim=-1)
    print(f"recall@1 {r1:.3f} recall@5 {r5:.3f} sorted {bool((vals[:, 1:] >= vals[:, :-1]).all())}")
    print("cos", cos, "pdist", F.pairwise_distance(q[:2], g[:2]))
    print("norms", q.norm(dim=1)[:3], torch.linalg.vector_norm(q, dim=1).mean().item())
