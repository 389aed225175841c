"""The standard ways an expert trains an ensemble of small MLPs in torch, as anchors for the engine.

* ``compiled``: the ensemble as stacked parameters (``(E, d_in, d_out)`` weights) trained with plain autograd and
  ``torch.optim.Adam(fused=True)``; the loss function (forward, hence its backward through AOTAutograd) under
  ``torch.compile``;
* ``vmap``: E ``nn.Sequential`` models stacked with ``torch.func.stack_module_state`` and run with
  ``torch.vmap(torch.func.functional_call)``, autograd and fused Adam.

Both train with the same validation as the engine's model selection (every ``every`` epochs a forward pass on each
model's validation rows, each model's best parameters kept), so the comparison is per training, selection on.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor


def _keep_best(params: Sequence[Tensor], kept: Sequence[Tensor], best: Tensor, score: Tensor) -> None:
    better = score < best
    best.copy_(torch.where(better, score, best))
    with torch.no_grad():
        for p, k in zip(params, kept, strict=True):
            k.copy_(torch.where(better.view(-1, *([1] * (p.dim() - 1))), p, k))


def train_compiled(init: Sequence[Tensor], X: Tensor, y: Tensor, train_idx: Tensor, val_idx: Tensor, epochs: int,
                   lr: float, every: int = 5, compiled: dict | None = None) -> list[Tensor]:
    """Stacked parameters + autograd + fused Adam, the loss under torch.compile; returns the best parameters."""
    params = [p.detach().clone().requires_grad_(True) for p in init]
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    n_layers = len(params) // 2

    def forward(ps: list[Tensor], x: Tensor) -> Tensor:
        h = x
        for layer in range(n_layers):
            h = torch.baddbmm(ps[2 * layer + 1], h, ps[2 * layer])
            if layer < n_layers - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def loss_fn(ps: list[Tensor], x: Tensor, t: Tensor) -> Tensor:
        return ((forward(ps, x) - t) ** 2).mean(dim=1).sum()

    cache = compiled if compiled is not None else {}
    if "loss" not in cache:
        cache["loss"] = torch.compile(loss_fn, dynamic=False)
        cache["forward"] = torch.compile(forward, dynamic=False)
    loss_c, forward_c = cache["loss"], cache["forward"]
    x_all, y_all = X[train_idx], y[train_idx]
    x_val, y_val = X[val_idx], y[val_idx]
    kept = [p.detach().clone() for p in params]
    best = torch.full((len(train_idx),), float("inf"))
    for epoch in range(epochs + 1):
        if epoch % every == 0:
            with torch.no_grad():
                _keep_best(params, kept, best, (forward_c(params, x_val) - y_val).abs().mean(dim=1))
        if epoch == epochs:
            break
        opt.zero_grad(set_to_none=True)
        loss_c(params, x_all, y_all).backward()
        opt.step()
    return kept


def train_vmap(init: Sequence[Tensor], X: Tensor, y: Tensor, train_idx: Tensor, val_idx: Tensor, epochs: int,
               lr: float, every: int = 5) -> list[Tensor]:
    """torch.func.stack_module_state + vmap(functional_call), autograd and fused Adam; returns the best parameters."""
    from torch.func import functional_call, stack_module_state

    from sim2real_scaling.training.ensemble import as_module

    E = init[0].shape[0]
    models = [as_module([p[e] for p in init]) for e in range(E)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    names = list(params)
    leaves = [params[k] for k in names]
    opt = torch.optim.Adam(leaves, lr=lr, fused=True)

    def one(p: dict, b: dict, x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,)).squeeze(-1)

    batched = torch.vmap(one)
    x_all, y_all = X[train_idx], y[train_idx]
    x_val, y_val = X[val_idx], y[val_idx]
    kept = [p.detach().clone() for p in leaves]
    best = torch.full((E,), float("inf"))
    for epoch in range(epochs + 1):
        if epoch % every == 0:
            with torch.no_grad():
                _keep_best(leaves, kept, best, (batched(params, buffers, x_val) - y_val).abs().mean(dim=1))
        if epoch == epochs:
            break
        opt.zero_grad(set_to_none=True)
        ((batched(params, buffers, x_all) - y_all) ** 2).mean(dim=1).sum().backward()
        opt.step()
    # back to the engine's layout: weights (E, d_in, d_out), biases (E, 1, d_out)
    out = []
    for name, k in zip(names, kept, strict=True):
        out.append(k.transpose(1, 2).contiguous() if name.endswith("weight") else k.unsqueeze(1))
    return out
