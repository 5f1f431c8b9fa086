import math
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)

class ClampedExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, limit):
        y = torch.exp(x.clamp(max=limit))
        ctx.save_for_backward(x, y)
        ctx.limit = limit
        return y
    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        grad = grad_output * y
        grad[x > ctx.limit] = 0
        return grad, None

class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)
    @staticmethod
    def backward(ctx, g):
        return g

class ScaledLinear(nn.Module):
    def __init__(self, in_features, out_features, scale=1.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_buffer("scale", torch.tensor(scale))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("tmp", torch.ones(3), persistent=False)
        self.reset_parameters()
    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)
    def forward(self, x):
        if self.training:
            self.calls += 1
        return F.linear(x, self.weight * self.scale, self.bias)
    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale.item()}"

x = torch.randn(5, requires_grad=True, dtype=torch.float64)
y = ClampedExp.apply(x, 0.5)
y.sum().backward()
print("custom fn grad ok:", torch.allclose(x.grad, torch.where(x > 0.5, torch.zeros_like(x), torch.exp(x))))
print("gradcheck", torch.autograd.gradcheck(lambda t: ClampedExp.apply(t, 10.0), (torch.randn(4, dtype=torch.double, requires_grad=True),)))

model = nn.Sequential(ScaledLinear(4, 16, scale=0.5), nn.Tanh(), ScaledLinear(16, 1))
print(model)
print("buffers", [n for n, _ in model.named_buffers()], "state keys", list(model.state_dict().keys()))

activations = {}
def get_activation(name):
    def hook(module, inp, out):
        activations[name] = out.detach()
    return hook
handles = [m.register_forward_hook(get_activation(n)) for n, m in model.named_modules() if isinstance(m, (ScaledLinear, nn.Tanh))]
pre = model[0].register_forward_pre_hook(lambda m, inp: (inp[0] * 1.0,))

X = torch.randn(128, 4); Y = (X[:, :1] * X[:, 1:2]).sin()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step in range(150):
    opt.zero_grad()
    out = model(X)
    q = StraightThrough.apply(out * 4) / 4
    loss = F.mse_loss(out, Y) + 0.1 * F.mse_loss(q, Y)
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.4f} act keys {sorted(activations)} shape {tuple(activations['1'].shape)}")
for h in handles: h.remove()
pre.remove()
activations.clear(); model(X)
print("after remove", activations, "calls", model[0].calls.item(), model[0].calls.dtype)
sd = model.state_dict()
m2 = nn.Sequential(ScaledLinear(4, 16), nn.Tanh(), ScaledLinear(16, 1))
m2.load_state_dict(sd)
print("scale restored", m2[0].scale.item(), "eq", torch.equal(m2(X), model(X)))
print("grad_fn", type(ClampedExp.apply(torch.ones(2, requires_grad=True), 1.0).grad_fn).__name__)
