"""The paper's optimiser, BertAdam (llyx97/Marginal-Utility-Diminishes, transformer/optimization.py L191-339):
Adam without bias correction, epsilon 1e-6, weight decay added to the update (decoupled, as AdamW), and each
parameter's gradient clipped to norm `max_grad_norm` on its own before the moments are updated. The learning
rate schedule is the scheduler's (`group["lr"]`), as for any torch optimiser."""

from __future__ import annotations

import torch

NO_DECAY = ("bias", "LayerNorm.bias", "LayerNorm.weight")  # main.py L1051: names without weight decay


class BertAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01, max_grad_norm: float = 1.0) -> None:  # fmt: skip
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "max_grad_norm": max_grad_norm}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_(param, group["max_grad_norm"])
                grad = param.grad
                state = self.state[param]
                if not state:
                    state["next_m"] = torch.zeros_like(param)
                    state["next_v"] = torch.zeros_like(param)
                next_m, next_v = state["next_m"], state["next_v"]
                next_m.mul_(beta1).add_(grad, alpha=1 - beta1)
                next_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = next_m / (next_v.sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update += group["weight_decay"] * param
                param.add_(update, alpha=-group["lr"])
        return loss


def bert_adam(named_parameters, lr: float, weight_decay: float) -> BertAdam:
    """BertAdam over the trainable parameters, with main.py's two groups: `weight_decay` for every parameter but
    biases and LayerNorm weights, which get none."""
    trainable = [(name, param) for name, param in named_parameters if param.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if not any(part in n for part in NO_DECAY)], "weight_decay": weight_decay},
        {"params": [p for n, p in trainable if any(part in n for part in NO_DECAY)], "weight_decay": 0.0},
    ]
    return BertAdam([group for group in groups if group["params"]], lr=lr)
