import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(0)
VOCAB, PAD, NCLS = 50, 0, 3

def make_batch(n):
    lengths = torch.randint(3, 12, (n,))
    maxlen = int(lengths.max())
    x = torch.full((n, maxlen), PAD, dtype=torch.long)
    y = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        L = lengths[i].item()
        toks = torch.randint(1, VOCAB, (L,))
        x[i, :L] = toks
        y[i] = (toks % NCLS).mode().values  # majority class of tokens mod 3
    return x, lengths, y

class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.lstm = nn.LSTM(32, 48, num_layers=1, batch_first=True, bidirectional=True)
        self.tagger = nn.Linear(96, NCLS)   # per-token head
        self.fc = nn.Linear(96, NCLS)

    def forward(self, x, lengths):
        e = self.emb(x)
        packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.lstm(packed)
        out, out_lens = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        hcat = torch.cat([h[-2], h[-1]], dim=1)
        return self.fc(hcat), self.tagger(out)

model = Classifier()
opt = optim.Adam(model.parameters(), lr=3e-3)
sched = optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
seq_crit = nn.CrossEntropyLoss(ignore_index=-100)
crit = nn.CrossEntropyLoss()
assert model.emb.weight[PAD].abs().sum().item() == 0

losses = []
for step in range(60):
    x, lengths, y = make_batch(32)
    tok_target = (x % NCLS).masked_fill(x == PAD, -100)
    logits, tok_logits = model(x, lengths)
    loss = crit(logits, y) + seq_crit(tok_logits.reshape(-1, NCLS), tok_target.view(-1))
    opt.zero_grad()
    loss.backward()
    assert model.emb.weight.grad[PAD].abs().sum().item() == 0
    gn = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
    sched.step()
    losses.append(loss.item())
    if step % 20 == 0:
        print(f"step {step} loss {loss.item():.4f} gn {float(gn):.3f} lr {sched.get_last_lr()[0]:.5f}")

model.eval()
with torch.no_grad():
    x, lengths, y = make_batch(200)
    logits, tok_logits = model(x, lengths)
    acc = (logits.argmax(dim=1) == y).float().mean().item()
    tok_pred = tok_logits.argmax(-1)
    mask = x != PAD
    tok_acc = (tok_pred[mask] == (x % NCLS)[mask]).float().mean().item()
print(f"first {sum(losses[:5])/5:.4f} last {sum(losses[-5:])/5:.4f} acc {acc:.3f} tok_acc {tok_acc:.3f}")
