"""Vectorised ensembles of fully connected networks: E independent models trained as one.

Parameters are stacked along a leading model axis: weights ``(E, d_in, d_out)``, biases
``(E, 1, d_out)``. The forward pass is a batched matrix product (``torch.baddbmm``), the loss is the sum
over models of each model's own mean squared error, and Adam is elementwise, so every model receives
exactly the gradient and update it would get if trained alone. Training E models costs one batched
pass instead of E Python loops; :func:`train_single` is that plain one-model loop, kept as the
reference the vectorised engine is tested and benchmarked against.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
}


@dataclass(frozen=True)
class MLPSpec:
    """Architecture: ``d_in`` inputs, hidden widths, one output."""

    d_in: int
    hidden: tuple[int, ...]
    activation: str = "relu"

    @property
    def widths(self) -> list[int]:
        return [self.d_in, *self.hidden, 1]

    def flops_per_sample(self) -> int:
        """Multiply-add FLOPs (2 per MAC) of one forward pass for one sample."""
        w = self.widths
        return sum(2 * a * b for a, b in zip(w[:-1], w[1:], strict=True))


@dataclass(frozen=True)
class OptimizerSettings:
    epochs: int = 300
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int | None = None
    min_steps: int = 0

    @classmethod
    def from_config(cls, section: dict) -> OptimizerSettings:
        return cls(**{k: section[k] for k in ("epochs", "lr", "weight_decay", "batch_size", "min_steps")})


def init_parameters(spec: MLPSpec, seeds: Sequence[int]) -> list[Tensor]:
    """Stacked parameters of ``len(seeds)`` models, model e initialised from ``seeds[e]`` alone.

    Initialisation follows ``torch.nn.Linear`` (uniform in +-1/sqrt(fan_in) for weights and biases),
    drawn on the CPU in float32 so that the same seed gives the same weights on every device.
    """
    params: list[Tensor] = []
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    widths = spec.widths
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        W = torch.stack([(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in gens])
        b = torch.stack([(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in gens])
        params.extend([W, b])
    return params


def forward(params: Sequence[Tensor], x: Tensor, activation: str = "relu") -> Tensor:
    """Predictions ``(E, B)`` for inputs ``x`` of shape ``(E, B, d_in)`` (or ``(B, d_in)``, shared)."""
    act = ACTIVATIONS[activation]
    n_layers = len(params) // 2
    h = x
    for layer in range(n_layers):
        W, b = params[2 * layer], params[2 * layer + 1]
        if h.dim() == 2:  # shared inputs: one matmul for all models
            h = torch.matmul(h, W) + b
        else:
            h = torch.baddbmm(b, h, W)
        if layer < n_layers - 1:
            h = act(h)
    return h.squeeze(-1)


def _adam(params: Sequence[Tensor], settings: OptimizerSettings) -> torch.optim.Optimizer:
    """Adam; the fused kernel (one pass over all parameters, CPU and CUDA) where torch offers it."""
    try:
        return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay, foreach=True)


def _steps_per_epoch(m: int, batch_size: int | None) -> int:
    return 1 if batch_size is None or batch_size >= m else -(-m // batch_size)


def train_ensemble(
    params: Sequence[Tensor],
    X: Tensor,
    y: Tensor,
    train_idx: Tensor,
    settings: OptimizerSettings,
    *,
    activation: str = "relu",
    shuffle_seeds: Sequence[int] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[list[Tensor], Tensor]:
    """Train E models, model e on rows ``train_idx[e]`` of ``X (N, d)`` / ``y (N,)``.

    ``train_idx``: ``(E, m)`` row indices. Full batch unless ``settings.batch_size`` is set, in which
    case model e shuffles its own rows every epoch with ``shuffle_seeds[e]``. Returns the trained
    parameters (new tensors; the inputs are not modified) and the final training loss per model ``(E,)``.
    """
    device = X.device
    params = [p.detach().to(device).clone().requires_grad_(True) for p in params]
    E, m = train_idx.shape
    optimizer = _adam(params, settings)
    steps_per_epoch = _steps_per_epoch(m, settings.batch_size)
    epochs = max(settings.epochs, -(-settings.min_steps // steps_per_epoch))
    full_batch = steps_per_epoch == 1
    if full_batch:
        xb_all, yb_all = X[train_idx], y[train_idx]  # gathered once: (E, m, d), (E, m)
    else:
        if shuffle_seeds is None or len(shuffle_seeds) != E:
            raise ValueError("mini-batch training needs one shuffle seed per model")
        gens = [torch.Generator().manual_seed(int(s)) for s in shuffle_seeds]
    report_every = max(1, epochs // 10)
    loss_per_model = torch.full((E,), float("nan"), device=device)
    for epoch in range(epochs):
        if full_batch:
            batches = [(xb_all, yb_all)]
        else:
            order = torch.stack([torch.randperm(m, generator=g) for g in gens]).to(device)
            rows = torch.gather(train_idx, 1, order)
            batches = [(X[rows[:, i:i + settings.batch_size]], y[rows[:, i:i + settings.batch_size]])
                       for i in range(0, m, settings.batch_size)]
        for xb, yb in batches:
            optimizer.zero_grad(set_to_none=True)
            pred = forward(params, xb, activation)
            loss_per_model = ((pred - yb) ** 2).mean(dim=1)
            loss_per_model.sum().backward()
            optimizer.step()
        if progress is not None and ((epoch + 1) % report_every == 0 or epoch + 1 == epochs):
            progress(epoch + 1, epochs, float(loss_per_model.detach().mean()))
    return [p.detach() for p in params], loss_per_model.detach()


@torch.no_grad()
def predict(params: Sequence[Tensor], X: Tensor, rows: Tensor, activation: str = "relu") -> Tensor:
    """Predictions ``(E, t)`` of model e for rows ``rows[e]`` (``rows``: ``(E, t)``)."""
    return forward(params, X[rows], activation)


def train_single(
    params_e: Sequence[Tensor],
    X: Tensor,
    y: Tensor,
    train_rows: Tensor,
    settings: OptimizerSettings,
    activation: str = "relu",
) -> nn.Sequential:
    """The plain reference: one ``nn.Sequential`` of ``nn.Linear`` layers, trained alone, full batch.

    ``params_e`` are one model's parameters as returned by :func:`init_parameters` sliced at index e
    (weights ``(d_in, d_out)``, biases ``(1, d_out)``).
    """
    act_modules = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}
    layers: list[nn.Module] = []
    n_layers = len(params_e) // 2
    for layer in range(n_layers):
        W, b = params_e[2 * layer], params_e[2 * layer + 1]
        linear = nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            linear.weight.copy_(W.T)
            linear.bias.copy_(b.reshape(-1))
        layers.append(linear)
        if layer < n_layers - 1:
            layers.append(act_modules[activation]())
    model = nn.Sequential(*layers).to(X.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    xb, yb = X[train_rows], y[train_rows]
    for _ in range(max(settings.epochs, settings.min_steps)):
        optimizer.zero_grad(set_to_none=True)
        loss = ((model(xb).squeeze(-1) - yb) ** 2).mean()
        loss.backward()
        optimizer.step()
    return model


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU falls back to CPU with a warning."""
    if name == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if name == "cuda":
        log.warning("device 'cuda' requested but no CUDA device is available: using the CPU")
    return torch.device("cpu")
