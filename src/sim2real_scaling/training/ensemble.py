"""Vectorised ensembles of fully connected networks: E independent models trained as one.

Parameters are stacked along a leading model axis: weights ``(E, d_in, d_out)``, biases
``(E, 1, d_out)``. The forward pass is a batched matrix product (``torch.baddbmm``), the loss is the sum
over models of each model's own mean squared error, and Adam is elementwise, so every model receives
exactly the gradient and update it would get if trained alone. Training E models costs one batched
pass instead of E Python loops; :func:`train_single` is that plain one-model loop, kept as the
reference the vectorised engine is tested and benchmarked against.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
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
        """From a config optimiser section (keys not given keep their defaults)."""
        return cls(**{k: section[k] for k in ("epochs", "lr", "weight_decay", "batch_size", "min_steps") if k in section})


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


class _Adam:
    """``torch.optim.Adam(fused=True)``'s update, called directly on fixed parameter and gradient lists.

    The same kernel and arithmetic as the optimizer class without its per-step Python bookkeeping (which
    costs as much as the update itself for small ensembles). Falls back to the optimizer class where the
    fused kernel is missing or refuses the device.
    """

    def __init__(self, params: list[Tensor], grads: list[Tensor], settings: OptimizerSettings) -> None:
        self.params, self.grads, self.settings = params, grads, settings
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        # All parameters take their steps together, so one step counter serves them all: the kernel only
        # reads it, and one in-place add per step replaces a per-tensor ``_foreach_add_`` (which costs more
        # than the update of a small ensemble's biases).
        self.step_count = torch.zeros((), dtype=torch.float32, device=params[0].device)
        self.steps = [self.step_count] * len(params)
        self.fallback: torch.optim.Optimizer | None = None
        self.checked = False

    def _fused_step(self) -> None:
        self.step_count.add_(1)
        torch._fused_adam_(self.params, self.grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps,
                           amsgrad=False, lr=float(self.settings.lr), beta1=0.9, beta2=0.999,
                           weight_decay=float(self.settings.weight_decay), eps=1e-8, maximize=False,
                           grad_scale=None, found_inf=None)

    def step(self) -> None:
        if self.fallback is not None:
            self.fallback.step()
            return
        if self.checked:
            self._fused_step()
            return
        try:
            self._fused_step()
            self.checked = True
        except (AttributeError, RuntimeError, TypeError):
            log.debug("fused Adam kernel unavailable: using torch.optim.Adam")
            for p, g in zip(self.params, self.grads, strict=True):
                p.grad = g
            # the kernel is missing or refuses this device: torch's own multi-tensor Adam (same arithmetic)
            self.fallback = torch.optim.Adam(self.params, lr=self.settings.lr,
                                             weight_decay=self.settings.weight_decay, foreach=True)
            self.fallback.step()


def _steps_per_epoch(m: int, batch_size: int | None) -> int:
    return 1 if batch_size is None or batch_size >= m else -(-m // batch_size)


# Width of the first layer's input is padded to a multiple of this (zero columns and zero weight rows, which
# stay zero under Adam): matrix kernels run faster on aligned rows, and the padding changes no sum.
_PAD = 16
# Full-batch training on a CPU runs a large ensemble as consecutive blocks of models whose whole working set
# (inputs, activations, parameters, gradients, Adam moments) fits in about this many bytes of cache; models
# are independent, so blocking changes no number (beyond the last bit: vectorised elementwise kernels may
# round a tensor's tail differently). On a GPU the whole ensemble is one block.
CPU_BLOCK_BYTES = 8 * 2**20
MIN_BLOCK = 8


def _activation_backward(activation: str, grad: Tensor, pre: Tensor, post: Tensor, out: Tensor) -> None:
    """``out = grad * act'(z)`` from the saved pre-activation ``pre`` and/or activation ``post``."""
    if activation == "relu":
        torch.ops.aten.threshold_backward.grad_input(grad, post, 0, grad_input=out)
    elif activation == "tanh":
        torch.ops.aten.tanh_backward.grad_input(grad, post, grad_input=out)
    elif activation == "silu":
        torch.ops.aten.silu_backward.grad_input(grad, pre, grad_input=out)
    else:
        raise ValueError(f"unknown activation {activation!r}")


@dataclass
class _StepBuffers:
    """One batch size's preallocated tensors, and every view of them that a step uses (built once)."""

    pre: list[Tensor]  # pre-activations z of each layer (the activation overwrites them unless silu)
    post: list[Tensor]  # activations a of the hidden layers (the same tensors as ``pre`` unless silu)
    grad: list[Tensor]  # d loss / d z of each layer (built in place from d loss / d a)
    diff: Tensor  # (E, b) prediction - target
    out_flat: Tensor  # the output layer's z as (E, b)
    grad_out_flat: Tensor  # its gradient as (E, b)
    grad_t: list[Tensor]  # grad[layer] transposed, (E, w, b)
    post_t: list[Tensor]  # post[layer] transposed, (E, w, b)


class _Ensemble:
    """E stacked MLPs with a hand-written forward/backward pass into preallocated buffers.

    Equivalent to autograd on :func:`forward` with the summed per-model MSE, but without the autograd
    graph and without allocating fresh tensors every step (large fresh allocations cost page faults that
    are as slow as the matrix products at these sizes). Layer 1's bias is folded into its weight matrix
    (a constant-1 input column), so its gradient comes out of the same matrix product. Every view a step
    needs is made once (a view costs a dispatch, which adds up over ~20 operations per step on a small
    ensemble).
    """

    def __init__(self, params: Sequence[Tensor], d_in: int, activation: str, device: torch.device,
                 settings: OptimizerSettings) -> None:
        if len(params) < 2 or len(params) % 2:
            raise ValueError("params must be (weight, bias) pairs")
        self.activation = activation
        self.n_layers = len(params) // 2
        self.d_in = d_in
        self.kp = padded_width(d_in)
        W1, b1 = params[0].detach().to(device), params[1].detach().to(device)
        E, h1 = W1.shape[0], W1.shape[2]
        self.E = E
        first = torch.zeros(E, self.kp, h1, device=device, dtype=W1.dtype)
        first[:, :d_in] = W1
        first[:, d_in] = b1.reshape(E, h1)
        self.params = [first] + [p.detach().to(device).clone().contiguous() for p in params[2:]]
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.optimizer = _Adam(self.params, self.grads, settings)
        self.widths = [h1] + [self.params[2 * layer - 1].shape[2] for layer in range(1, self.n_layers)]
        # layers >= 1 (weights at 2 * layer - 1): their weights and weight gradients transposed (views), and for
        # hidden layers a contiguous buffer for the transposed weights (faster products than the strided view)
        later = range(1, self.n_layers)
        self._w_t = {layer: self.params[2 * layer - 1].transpose(1, 2) for layer in later}
        self._g_t = {layer: self.grads[2 * layer - 1].transpose(1, 2) for layer in later}
        self._w_t_buffers = {layer: torch.empty_like(self._w_t[layer], memory_format=torch.contiguous_format)
                             for layer in later if self.widths[layer] > 1}
        self._buffers: dict[int, _StepBuffers] = {}
        self._x0: Tensor | None = None
        self._x0_t: Tensor | None = None

    def _buffers_for(self, b: int) -> _StepBuffers:
        if b not in self._buffers:
            ref = self.params[0]

            def new(w: int) -> Tensor:
                return torch.empty(self.E, b, w, device=ref.device, dtype=ref.dtype)

            silu = self.activation == "silu"
            pre = [new(w) for w in self.widths]
            post = [new(w) if silu else z for w, z in zip(self.widths[:-1], pre, strict=False)]
            grad = [new(w) for w in self.widths]
            self._buffers[b] = _StepBuffers(
                pre=pre, post=post, grad=grad, diff=torch.empty(self.E, b, device=ref.device, dtype=ref.dtype),
                out_flat=pre[-1].view(self.E, b), grad_out_flat=grad[-1].view(self.E, b),
                grad_t=[g.transpose(1, 2) for g in grad], post_t=[a.transpose(1, 2) for a in post])
        return self._buffers[b]

    def _inputs_transposed(self, x0: Tensor) -> Tensor:
        """``x0`` transposed (a view), kept while the same inputs come back (every step of full-batch training)."""
        if x0 is not self._x0:
            self._x0, self._x0_t = x0, x0.transpose(1, 2)
        return self._x0_t  # type: ignore[return-value]

    def step(self, x0: Tensor, yb: Tensor, want_loss: bool) -> Tensor | None:
        """One Adam step on inputs ``x0 (E, b, kp)`` (padded, see :func:`pad_inputs`), targets ``yb (E, b)``."""
        b = yb.shape[1]
        ps, gs, L = self.params, self.grads, self.n_layers
        buf = self._buffers_for(b)
        pre, post, grad = buf.pre, buf.post, buf.grad
        torch.bmm(x0, ps[0], out=pre[0])
        for layer in range(1, L):
            if self.activation == "relu":
                pre[layer - 1].clamp_min_(0)
            elif self.activation == "tanh":
                pre[layer - 1].tanh_()
            else:
                torch.ops.aten.silu.out(pre[layer - 1], out=post[layer - 1])
            if self.widths[layer] == 1:  # output layer: bias added after the product (a matrix-vector one)
                torch.bmm(post[layer - 1], ps[2 * layer - 1], out=pre[layer]).add_(ps[2 * layer])
            else:
                torch.baddbmm(ps[2 * layer], post[layer - 1], ps[2 * layer - 1], out=pre[layer])
        torch.sub(buf.out_flat, yb, out=buf.diff)
        loss = buf.diff.square().mean(dim=1) if want_loss else None
        torch.mul(buf.diff, 2.0 / b, out=buf.grad_out_flat)
        for layer in range(L - 1, 0, -1):
            if self.widths[layer] == 1:  # output layer: (1 x b) @ (b x h) products and an outer product
                torch.bmm(buf.grad_t[layer], post[layer - 1], out=self._g_t[layer])
                torch.sum(grad[layer], dim=1, keepdim=True, out=gs[2 * layer])
                torch.mul(grad[layer], self._w_t[layer], out=grad[layer - 1])
            else:
                torch.bmm(buf.post_t[layer - 1], grad[layer], out=gs[2 * layer - 1])
                torch.sum(grad[layer], dim=1, keepdim=True, out=gs[2 * layer])
                w_t = self._w_t_buffers[layer].copy_(self._w_t[layer])
                torch.bmm(grad[layer], w_t, out=grad[layer - 1])
            _activation_backward(self.activation, grad[layer - 1], pre[layer - 1], post[layer - 1],
                                 grad[layer - 1])
        torch.bmm(self._inputs_transposed(x0), grad[0], out=gs[0])
        self.optimizer.step()
        return loss

    def subset(self, keep: Tensor, settings: OptimizerSettings) -> _Ensemble | None:
        """The models ``keep`` (block positions) as a smaller ensemble that goes on exactly where they are, Adam's
        moments and step included; None where the optimiser's state cannot be carried over (torch's fallback)."""
        old = self.optimizer
        sub = _Ensemble([p[keep] for p in self.export()], self.d_in, self.activation, self.params[0].device, settings)
        # Adam's state: the same internal layout, one row per model
        if isinstance(old, _Adam) and old.fallback is None:
            for src, dst in zip(old.exp_avgs + old.exp_avg_sqs, sub.optimizer.exp_avgs + sub.optimizer.exp_avg_sqs,
                                strict=True):
                dst.copy_(src[keep])
            sub.optimizer.settings = old.settings
            sub.optimizer.step_count.copy_(old.step_count)
            sub.optimizer.checked = old.checked
            return sub
        if isinstance(old, _Adam_PerModel):
            rates = _Adam_PerModel(sub.params, sub.grads, old.lr.reshape(-1)[keep], old.wd.reshape(-1)[keep])
            for src, dst in zip(old.exp_avgs + old.exp_avg_sqs, rates.exp_avgs + rates.exp_avg_sqs, strict=True):
                dst.copy_(src[keep])
            rates.t = old.t
            sub.optimizer = rates
            return sub
        return None

    @torch.no_grad()
    def predict(self, x0: Tensor) -> Tensor:
        """Predictions ``(E, v)`` for padded inputs ``x0 (E, v, kp)`` with the current parameters (no buffers)."""
        ps, L = self.params, self.n_layers
        act = ACTIVATIONS[self.activation]
        h = torch.bmm(x0, ps[0])
        for layer in range(1, L):
            h = torch.baddbmm(ps[2 * layer], act(h), ps[2 * layer - 1])
        return h.squeeze(-1)

    def export(self, params: Sequence[Tensor] | None = None) -> list[Tensor]:
        """Parameters (the current ones, or ``params`` in the internal layout) in the public layout: weights
        ``(E, d_in, d_out)``, biases ``(E, 1, d_out)``."""
        params = self.params if params is None else params
        first = params[0].detach()
        out = [first[:, :self.d_in].contiguous(), first[:, self.d_in:self.d_in + 1].contiguous()]
        return out + [p.detach().clone() for p in params[1:]]


def padded_width(d_in: int) -> int:
    """Width of layer 1's input as the engine stores it: d_in, the bias column, zero padding."""
    return -(-(d_in + 1) // _PAD) * _PAD


def pad_inputs(X: Tensor) -> Tensor:
    """``(N, padded_width(d))``: X, a constant-1 column (layer 1's bias) and zero columns."""
    N, d = X.shape
    Xa = torch.zeros(N, padded_width(d), device=X.device, dtype=X.dtype)
    Xa[:, :d] = X
    Xa[:, d] = 1
    return Xa


def block_size(E: int, m: int, d_in: int, widths: Sequence[int], device: torch.device) -> int:
    """Models trained together (the rest of a chunk follows in further blocks of the same size or less)."""
    if device.type != "cpu" or E <= MIN_BLOCK:
        return E
    n_params = sum(a * b + b for a, b in zip([padded_width(d_in), *widths[1:-1]], widths[1:], strict=True))
    per_model = 4 * (m * padded_width(d_in) + 2 * m * sum(widths[1:]) + 4 * n_params)
    block = max(MIN_BLOCK, min(E, CPU_BLOCK_BYTES // per_model))
    n_blocks = -(-E // block)
    return -(-E // n_blocks)


@dataclass
class Checkpoints:
    """What :func:`train_ensemble` does every ``every`` epochs (and before the first): validate, keep, stop.

    ``mode``:

    * ``"best"`` (early stopping, hold-out): each model's parameters at its lowest validation error are kept and
      returned (ties: the earlier epoch);
    * ``"curve"`` (cross-validation folds): the validation curve is recorded, the final parameters returned;
    * ``"at"`` (the refit after cross-validation): model e's parameters at epoch ``stop_at[e]`` are returned,
      and training stops once every model of a block has reached its epoch.

    ``val_idx (E, v)``: each model's validation rows; ``score(pred, models)``: the validation error of models
    ``models (k,)`` (indices into the ensemble) from their predictions ``(k, v)`` on the transformed scale (the
    caller inverts the transform: errors are in the property's units). ``patience``: a model is done once it has
    not improved for that many checks (its later checks are ignored, so its result never depends on the other
    models of its ensemble), and a block stops when all its models are done (None: train every epoch). Filled in by training:
    ``epochs (C,)`` the checked epochs, ``curve (E, C)`` validation errors (NaN where not reached),
    ``best_epoch``, ``best_score`` and ``train_loss`` (E,) at the kept epoch.
    """

    every: int
    mode: str = "best"
    val_idx: Tensor | None = None
    score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    stop_at: np.ndarray | None = None
    patience: int | None = None
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    curve: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    best_epoch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    best_score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    train_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if self.mode not in ("best", "curve", "at"):
            raise ValueError(f"unknown checkpoint mode {self.mode!r}")
        if self.mode != "at" and (self.val_idx is None or self.score is None):
            raise ValueError(f"checkpoint mode {self.mode!r} needs validation rows and a score")
        if self.mode == "at" and self.stop_at is None:
            raise ValueError("checkpoint mode 'at' needs stop_at")
        if self.every < 1:
            raise ValueError("checkpoints every < 1 epoch")

    def check_epochs(self, epochs: int) -> np.ndarray:
        """The epochs checked: 0, every, 2 every, ..., and the last."""
        marks = list(range(0, epochs + 1, self.every))
        if marks[-1] != epochs:
            marks.append(epochs)
        return np.array(marks, dtype=int)


class _Adam_PerModel:
    """Adam with a learning rate and weight decay of each model's own (``lr``, ``weight_decay``: ``(E,)``).

    The arithmetic of ``torch.optim.Adam``'s single-tensor path (L2 weight decay added to the gradient,
    ``lerp`` of the first moment, bias-corrected step), with the rates broadcast over each model's parameters.
    Used when the models of an ensemble train with different settings (a hyperparameter grid); the fused
    kernel takes one scalar rate.
    """

    def __init__(self, params: list[Tensor], grads: list[Tensor], lr: Tensor, weight_decay: Tensor) -> None:
        self.params, self.grads = params, grads
        self.lr = lr.reshape(-1, 1, 1).to(params[0])
        self.wd = weight_decay.reshape(-1, 1, 1).to(params[0])
        self.use_wd = bool((weight_decay != 0).any())
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        bc1 = 1.0 - 0.9 ** self.t
        bc2_sqrt = math.sqrt(1.0 - 0.999 ** self.t)
        step_size = self.lr / bc1
        for p, g, m, v in zip(self.params, self.grads, self.exp_avgs, self.exp_avg_sqs, strict=True):
            if self.use_wd:
                g = g + self.wd * p
            m.lerp_(g, 0.1)
            v.mul_(0.999).addcmul_(g, g, value=0.001)
            denom = (v.sqrt() / bc2_sqrt).add_(1e-8)
            p.sub_(step_size * m / denom)


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
    checkpoints: Checkpoints | None = None,
    lr: Tensor | None = None,
    weight_decay: Tensor | None = None,
) -> tuple[list[Tensor], Tensor]:
    """Train E models, model e on rows ``train_idx[e]`` of ``X (N, d)`` / ``y``.

    ``y``: ``(N,)`` targets shared by every model, or ``(E, N)``: model e's own (e.g. transformed by its trial's
    own target transform). ``train_idx``: ``(E, m)`` row indices. Full batch unless ``settings.batch_size`` is
    set, in which case model e shuffles its own rows every epoch with ``shuffle_seeds[e]``. ``settings.epochs``
    (at least ``min_steps`` optimiser steps) is the most a model trains; ``checkpoints`` validates along the way
    and may keep an earlier epoch's parameters (early stopping, a refit to chosen epochs; see
    :class:`Checkpoints`). ``lr``/``weight_decay`` ``(E,)``: a rate of each model's own (default: the
    settings'). Returns the trained parameters (new tensors; the inputs are not modified) and each model's
    training loss ``(E,)`` (at the kept epoch with checkpoints, else the last).

    Each step is a handful of batched matrix products into preallocated buffers and one Adam update over all
    models (see :class:`_Ensemble`). Full batch, every model's rows are gathered once, and on a CPU a large
    ensemble is trained as consecutive cache-sized blocks of models (:func:`block_size`); ``progress`` then
    counts the epochs of all blocks.
    """
    device = X.device
    E, m = train_idx.shape
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    if y.dim() == 2 and y.shape[0] != E:
        raise ValueError(f"y has targets for {y.shape[0]} models, train_idx for {E}")
    steps_per_epoch = _steps_per_epoch(m, settings.batch_size)
    epochs = max(settings.epochs, -(-settings.min_steps // steps_per_epoch))
    full_batch = steps_per_epoch == 1
    Xa = pad_inputs(X)
    if not full_batch and (shuffle_seeds is None or len(shuffle_seeds) != E):
        raise ValueError("mini-batch training needs one shuffle seed per model")
    per_model_rates = lr is not None or weight_decay is not None
    lr_all = (lr if lr is not None else torch.full((E,), settings.lr)).to(device=device, dtype=torch.float32)
    wd_all = (weight_decay if weight_decay is not None else torch.full((E,), settings.weight_decay)).to(
        device=device, dtype=torch.float32)
    widths = [int(params[0].shape[1])] + [int(params[i].shape[2]) for i in range(0, len(params), 2)]
    # On a CPU a large ensemble trains as consecutive cache-sized blocks of models (each model shuffles with its own
    # generator, so blocks change no number); a step's working set is its batch of rows for every model of the block
    block = block_size(E, m if full_batch else min(int(settings.batch_size or m), m), X.shape[1], widths, device)
    starts = list(range(0, E, block))
    total = len(starts) * epochs
    report_every = max(1, total // 10)
    cp = checkpoints
    marks = start_checkpoints(cp, E, epochs) if cp is not None else np.zeros(0, dtype=int)
    out: list[list[Tensor]] = []
    losses: list[Tensor] = []
    for k, first in enumerate(starts):
        sel = slice(first, first + block)
        models = np.arange(E)[sel]
        net = _Ensemble([p[sel] for p in params], X.shape[1], activation, device, settings)
        if per_model_rates:
            uniform = bool((lr_all[sel] == lr_all[first]).all() and (wd_all[sel] == wd_all[first]).all())
            if uniform:
                net.optimizer = _Adam(net.params, net.grads, dataclasses.replace(
                    settings, lr=float(lr_all[first]), weight_decay=float(wd_all[first])))
            else:
                net.optimizer = _Adam_PerModel(net.params, net.grads, lr_all[sel], wd_all[sel])
        idx = train_idx[sel]
        yb_all = y[sel] if y.dim() == 2 else y
        n_models = idx.shape[0]
        loss_per_model = torch.full((n_models,), float("nan"), device=device)
        # what each model of the block ends with (models that are done leave the ensemble early, see below)
        result = [p.detach().clone() for p in net.params]
        result_loss = torch.full((n_models,), float("nan"), device=device)
        active = np.arange(n_models)  # block positions of the models still in `net`
        gens = [torch.Generator().manual_seed(int(s)) for s in shuffle_seeds[sel]] if not full_batch else []  # type: ignore[index]
        bs = int(settings.batch_size or m)

        def gather() -> tuple[Tensor | None, Tensor | None]:
            if not full_batch:
                return None, None
            return Xa[idx], (torch.gather(yb_all, 1, idx) if y.dim() == 2 else yb_all[idx])

        x_all, y_all = gather()  # full batch: every model's rows gathered once, (E, m, kp) and (E, m)
        monitor = None
        if cp is not None:
            x_val = Xa[cp.val_idx[sel].to(device)] if cp.val_idx is not None else None
            monitor = BlockMonitor(cp, net.params, (lambda: net.predict(x_val)), models, marks)
        epochs_block = 0 if monitor is not None and monitor.check(0, loss_per_model) else epochs
        for epoch in range(epochs_block):
            done = k * epochs + epoch + 1
            report = progress is not None and (done % report_every == 0 or done == total)
            checking = monitor is not None and monitor.is_mark(epoch + 1)
            want = report or epoch + 1 == epochs or checking
            if full_batch:
                loss = net.step(x_all, y_all, want_loss=want)
            else:
                order = torch.stack([torch.randperm(m, generator=g) for g in gens]).to(device)
                rows = torch.gather(idx, 1, order)
                for i in range(0, m, bs):
                    r = rows[:, i:i + bs]
                    yr = torch.gather(yb_all, 1, r) if y.dim() == 2 else yb_all[r]
                    loss = net.step(Xa[r], yr, want_loss=want and i + bs >= m)
            if loss is not None:
                loss_per_model = loss
            if report:
                # models kept at epoch 0 (nothing beat the starting point) have no training loss: left out
                done_losses = torch.cat([*losses, loss_per_model])
                progress(done, total, float(done_losses.nanmean()))  # type: ignore[misc]
            if not checking:
                continue
            if monitor.check(epoch + 1, loss_per_model):  # type: ignore[union-attr]
                break
            finished = monitor.finished(epoch + 1)  # type: ignore[union-attr]
            # Models that are done go on training with the others, uselessly; once half of them are, the rest
            # continue as a smaller ensemble (each model exactly where it was: parameters, Adam's moments, shuffles).
            if 2 * int(finished.sum()) >= len(active) and len(active) > MIN_BLOCK and not finished.all():
                keep = torch.from_numpy(np.flatnonzero(~finished)).to(device)
                sub = net.subset(keep, settings)
                if sub is None:
                    continue
                _store(result, result_loss, active[finished], monitor, net, loss_per_model, finished, cp)
                keep_np = keep.cpu().numpy()
                active = active[keep_np]
                net = sub
                idx = idx[keep]
                if y.dim() == 2:
                    yb_all = yb_all[keep]
                x_all, y_all = gather()
                gens = [gens[i] for i in keep_np] if gens else gens
                loss_per_model = loss_per_model[keep]
                if x_val is not None:
                    x_val = x_val[keep]
                monitor.restrict(keep_np, net.params)
        if monitor is not None:
            _store(result, result_loss, active, monitor, net, loss_per_model, np.ones(len(active), bool), cp)
        else:
            for r, p in zip(result, net.params, strict=True):
                r.copy_(p.detach())
            result_loss = loss_per_model
        out.append(net.export(result))
        losses.append(result_loss)
    params_out = [torch.cat(parts) if len(out) > 1 else parts[0] for parts in zip(*out, strict=True)]
    return params_out, torch.cat(losses)


def _store(result: list[Tensor], result_loss: Tensor, positions: np.ndarray, monitor: BlockMonitor, net: _Ensemble,
           loss: Tensor, which: np.ndarray, cp: Checkpoints) -> None:
    """Write what models ``which`` (of the ensemble ``net``) end with into the block's ``result`` at
    ``positions``: their kept parameters (modes best and at) or their current ones (mode curve)."""
    sel = torch.from_numpy(np.flatnonzero(which)).to(net.params[0].device)
    pos = torch.from_numpy(np.asarray(positions)).to(net.params[0].device)
    source = monitor.kept if cp.mode in ("best", "at") else net.params
    for r, p in zip(result, source, strict=True):  # type: ignore[arg-type]
        r[pos] = p.detach()[sel]
    if cp.mode in ("best", "at"):
        result_loss[pos] = torch.as_tensor(cp.train_loss[monitor.models[which]], dtype=result_loss.dtype,
                                           device=result_loss.device)
    else:
        result_loss[pos] = loss.detach()[sel]


class BlockMonitor:
    """The checkpoint bookkeeping of one block of models (see :class:`Checkpoints`).

    ``params``: the block's parameter tensors (leading model axis), updated in place by training;
    ``predict_val()``: the block's current predictions ``(k, v)`` on its validation rows; ``models``: the
    block's indices in the whole ensemble. Any trainer with stacked parameters can use it.
    """

    def __init__(self, cp: Checkpoints, params: Sequence[Tensor], predict_val: Callable[[], Tensor] | None,
                 models: np.ndarray, marks: np.ndarray) -> None:
        self.cp, self.params, self.predict_val, self.models, self.marks = cp, list(params), predict_val, models, marks
        self.mark_index = {int(e): i for i, e in enumerate(marks)}
        self.kept = [p.detach().clone() for p in self.params] if cp.mode in ("best", "at") else None
        self.since_best = np.zeros(len(models), dtype=int)
        self.best = np.full(len(models), np.inf)
        if cp.mode == "at":
            self.stop_at = np.asarray(cp.stop_at)[models]

    def is_mark(self, epoch: int) -> bool:
        return epoch in self.mark_index

    def finished(self, epoch: int) -> np.ndarray:
        """Which models have nothing left to do after the check at ``epoch`` (patience ran out; their epoch passed)."""
        if self.cp.mode == "at":
            return self.stop_at <= epoch
        if self.cp.patience is None:
            return np.zeros(len(self.models), dtype=bool)
        return self.since_best > self.cp.patience

    def restrict(self, keep: np.ndarray, params: Sequence[Tensor]) -> None:
        """Go on with the models at positions ``keep`` only, whose parameters are now ``params``."""
        self.params = list(params)
        self.models = self.models[keep]
        self.since_best, self.best = self.since_best[keep], self.best[keep]
        if self.kept is not None:
            sel = torch.from_numpy(keep).to(self.kept[0].device)
            self.kept = [k[sel] for k in self.kept]
        if self.cp.mode == "at":
            self.stop_at = self.stop_at[keep]

    def _keep(self, mask: np.ndarray) -> None:
        if not mask.any():
            return
        sel = torch.from_numpy(mask).to(self.params[0].device)
        for p, kept in zip(self.params, self.kept, strict=True):  # type: ignore[arg-type]
            kept[sel] = p.detach()[sel]

    def check(self, epoch: int, loss: Tensor) -> bool:
        """Validate at ``epoch``, keep what the mode keeps; True when the block may stop."""
        cp, models = self.cp, self.models
        i = self.mark_index[epoch]
        loss_np = loss.detach().cpu().numpy().astype(float)
        if cp.mode == "at":
            mask = self.stop_at == epoch
            self._keep(mask)
            cp.train_loss[models[mask]] = loss_np[mask]
            cp.best_epoch[models[mask]] = epoch
            return bool(epoch >= self.stop_at.max())
        pred = self.predict_val().detach().cpu().numpy().astype(np.float64)  # type: ignore[misc]
        score = np.asarray(cp.score(pred, models), dtype=float)  # type: ignore[misc]
        # a model whose own patience ran out is done: later checks are not its (so what a model keeps never
        # depends on which other models share its block, chunk or job)
        active = self.since_best <= cp.patience if cp.patience is not None else np.ones(len(models), dtype=bool)
        score = np.where(active, score, np.nan)
        cp.curve[models, i] = score
        improved = active & np.isfinite(score) & (score < self.best)
        self.best = np.where(improved, score, self.best)
        self.since_best = np.where(improved, 0, self.since_best + 1)
        cp.best_score[models] = self.best
        cp.best_epoch[models] = np.where(improved, epoch, cp.best_epoch[models])
        if cp.mode == "best":
            self._keep(improved)
            cp.train_loss[models[improved]] = loss_np[improved]
        return cp.patience is not None and bool((self.since_best > cp.patience).all())


def start_checkpoints(cp: Checkpoints, E: int, epochs: int) -> np.ndarray:
    """Reset ``cp``'s results for E models trained up to ``epochs``; returns the checked epochs."""
    marks = cp.check_epochs(epochs)
    cp.epochs = marks
    cp.curve = np.full((E, len(marks)), np.nan)
    cp.best_epoch = np.zeros(E, dtype=int)
    cp.best_score = np.full(E, np.inf)
    cp.train_loss = np.full(E, np.nan)
    if cp.mode == "at":
        stop_at = np.asarray(cp.stop_at, dtype=int)
        if stop_at.shape != (E,) or not np.isin(stop_at, marks).all():
            raise ValueError(f"stop_at must give each of the {E} models one of the checked epochs {marks.tolist()}")
    return marks


@torch.no_grad()
def predict(params: Sequence[Tensor], X: Tensor, rows: Tensor, activation: str = "relu") -> Tensor:
    """Predictions ``(E, t)`` of model e for rows ``rows[e]`` (``rows``: ``(E, t)``)."""
    return forward(params, X[rows], activation)


def as_module(params_e: Sequence[Tensor], activation: str = "relu") -> nn.Sequential:
    """One model of an ensemble as the standard ``nn.Sequential`` of ``nn.Linear`` layers.

    ``params_e``: one model's parameters as :func:`init_parameters` stacks them, sliced at index e (weights
    ``(d_in, d_out)``, biases ``(1, d_out)``).
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
    return nn.Sequential(*layers)


def train_single(
    params_e: Sequence[Tensor],
    X: Tensor,
    y: Tensor,
    train_rows: Tensor,
    settings: OptimizerSettings,
    activation: str = "relu",
) -> nn.Sequential:
    """The plain reference: one model (:func:`as_module`) trained alone with ``torch.optim.Adam``, full batch."""
    model = as_module(params_e, activation).to(X.device)
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
