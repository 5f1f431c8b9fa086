import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

torch.manual_seed(1)
np.random.seed(1)

class LineWorld:
    """Agent on positions 0..6, starts at 3, goal at 6 (+1), pit at 0 (-1)."""
    def reset(self):
        self.pos, self.t = 3, 0
        return self._obs()
    def _obs(self):
        o = np.zeros(7, dtype=np.float32); o[self.pos] = 1.0
        return o
    def step(self, a):
        self.pos += 1 if a == 1 else -1
        self.t += 1
        if self.pos == 6: return self._obs(), 1.0, True
        if self.pos == 0: return self._obs(), -1.0, True
        return self._obs(), -0.01, self.t >= 20

class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(7, 32)
        self.dropout = nn.Dropout(p=0.1)
        self.affine2 = nn.Linear(32, 2)
        self.saved_log_probs, self.rewards = [], []
    def forward(self, x):
        x = F.relu(self.dropout(self.affine1(x)))
        return F.softmax(self.affine2(x), dim=1)

policy = Policy()
optimizer = optim.Adam(policy.parameters(), lr=1e-2)
eps = np.finfo(np.float32).eps.item()
gamma = 0.99

def select_action(state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()

def finish_episode():
    R, returns = 0, []
    for r in policy.rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    policy_loss = [-lp * R for lp, R in zip(policy.saved_log_probs, returns)]
    optimizer.zero_grad()
    loss = torch.cat(policy_loss).sum()
    loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]
    return loss.item()

env = LineWorld()
running = 0.0
wins = []
for ep in range(300):
    state, ep_reward = env.reset(), 0.0
    for t in range(1, 50):
        action = select_action(state)
        state, reward, done = env.step(action)
        policy.rewards.append(reward)
        ep_reward += reward
        if done: break
    wins.append(env.pos == 6)
    running = 0.05 * ep_reward + 0.95 * running
    if len(policy.rewards) > 1:
        finish_episode()
    else:
        del policy.rewards[:]; del policy.saved_log_probs[:]
    if ep % 50 == 0:
        print(f"episode {ep} last reward {ep_reward:.2f} running {running:.3f}")
with torch.no_grad():
    p = policy(torch.eye(7)).numpy()
print(f"win rate first 50 {np.mean(wins[:50]):.2f} last 50 {np.mean(wins[-50:]):.2f}; P(right) {np.round(p[1:6, 1], 2)}")
ent = Categorical(logits=torch.tensor([[0.0, 1.0]])).entropy()
lp = torch.stack([Categorical(probs=torch.tensor([0.3, 0.7])).log_prob(torch.tensor(i)) for i in range(2)])
print("entropy", ent, "stacked logprobs", lp)
