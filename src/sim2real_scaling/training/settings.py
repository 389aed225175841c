"""Typed settings of the training layer, built from the config slices a training rule declares as params.

Nothing in the training layer reads the config dictionary itself: a stage builds these objects once
(:meth:`TrainingSettings.from_slices`) and hands them down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim2real_scaling.data.features import DescriptorTransformSettings
from sim2real_scaling.training.ensemble import OptimizerSettings

SCHEMES = ("auto", "cv", "holdout", "fixed")
#: the model section of a job that trains no network (the simulation reference)
DEFAULT_MODEL = {"hidden": [1], "activation": "relu", "pretrain": {}, "finetune": {}, "direct": {}}


@dataclass(frozen=True)
class SelectionSettings:
    """Model selection inside every trial (config ``model.selection``).

    The training length (and, with ``grid``, the learning rate and weight decay) of every fine-tuned, direct
    or multitask network is chosen on validation rows taken from that trial's own training rows:

    * ``cv``: ``folds``-fold cross-validation (folds grouped like the split), the setting with the lowest mean
      validation MAE over the folds, then a refit on all training rows for that many epochs;
    * ``holdout``: ``holdout_fraction`` of the training rows held out, early stopping, the best epoch kept;
    * ``auto`` (the default): ``cv`` when the trial has fewer than ``cv_below`` (1,500) training rows, else
      ``holdout``: a hold-out's loss against cross-validation shrank from 18% at 86 rows to 1-2% at 1,772, where
      cross-validation costs six times as much (docs/training.md);
    * ``fixed``: no selection, the optimiser's ``epochs`` (the old behaviour).

    Validation MAEs are in the property's own units, checked every ``every`` epochs (epoch 0, the starting
    network, included); training stops once no model has improved for ``patience`` checks.
    """

    scheme: str = "auto"
    folds: int = 5
    holdout_fraction: float = 0.2
    cv_below: int = 1500
    every: int = 5
    patience: int | None = 20
    grid: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"model.selection.scheme must be one of {SCHEMES}, got {self.scheme!r}")

    def scheme_for(self, m: int) -> str:
        """The scheme a trial with ``m`` training rows uses (cv needs at least 2 rows per fold)."""
        scheme = self.scheme
        if scheme == "auto":
            scheme = "cv" if m < self.cv_below else "holdout"
        if scheme == "cv" and m < 2 * min(self.folds, 2) + 1:
            return "fixed"
        if scheme == "holdout" and int(round(self.holdout_fraction * m)) < 1:
            return "fixed"
        return scheme

    def folds_for(self, m: int) -> int:
        return max(2, min(self.folds, m // 2))

    @property
    def grid_points(self) -> list[tuple[float | None, float | None]]:
        """(lr, weight_decay) of every grid point; None = the optimiser's own value."""
        lrs = list(self.grid.get("lr") or [None])
        wds = list(self.grid.get("weight_decay") or [None])
        return [(lr, wd) for lr in lrs for wd in wds]

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> SelectionSettings:
        s = dict(section or {})
        grid = {k: tuple(float(v) for v in vals) for k, vals in (s.get("grid") or {}).items() if vals}
        return cls(scheme=s.get("scheme", "auto"), folds=int(s.get("folds", 5)),
                   holdout_fraction=float(s.get("holdout_fraction", 0.2)), cv_below=int(s.get("cv_below", 1500)),
                   every=int(s.get("every", 5)), patience=s.get("patience", 20), grid=grid)


@dataclass(frozen=True)
class PretrainSettings:
    """Pretraining on n source rows: the optimiser, and early stopping on held-out source rows (config
    ``model.pretrain``: ``validation_fraction`` of the n rows held out, checked every ``every`` epochs,
    stopped after ``patience`` checks without improvement, the best epoch kept; 0 = no hold-out, the full
    ``epochs``)."""

    optimizer: OptimizerSettings
    validation_fraction: float = 0.1
    every: int = 1
    patience: int | None = 20

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PretrainSettings:
        return cls(optimizer=OptimizerSettings.from_config(section),
                   validation_fraction=float(section.get("validation_fraction", 0.1)),
                   every=int(section.get("every", 1)), patience=section.get("patience", 20))


@dataclass(frozen=True)
class ModelSettings:
    """The fully connected network (config ``model``)."""

    hidden: tuple[int, ...]
    activation: str
    pretrain: PretrainSettings
    finetune: OptimizerSettings
    direct: OptimizerSettings
    selection: SelectionSettings

    @classmethod
    def from_config(cls, model: Mapping[str, Any]) -> ModelSettings:
        """From the config's ``model`` section. A job declares only the optimiser sections of the networks it trains
        (a direct-learning job does not depend on ``finetune``), so a missing one keeps its defaults, unused."""
        return cls(hidden=tuple(model["hidden"]), activation=model["activation"],
                   pretrain=PretrainSettings.from_config(model.get("pretrain") or {}),
                   finetune=OptimizerSettings.from_config(model.get("finetune") or {}),
                   direct=OptimizerSettings.from_config(model.get("direct") or {}),
                   selection=SelectionSettings.from_config(model.get("selection")))


@dataclass(frozen=True)
class ProtocolSettings:
    """The measurement protocol (config ``seed`` and ``protocol``)."""

    seed: int
    trials: int  # 0 where a job is not told (a training job gets its own trials)
    chunk_size: int
    test_fraction: float
    replicates: int | None  # pretraining draws; None = one per trial
    group_columns: tuple[str, ...] = ()
    per_material: bool = False
    ensembles_per_job: int = 4

    def replicate_of(self, trial: int) -> int:
        """The pretraining draw trial ``trial`` fine-tunes."""
        return trial if self.replicates is None else trial % self.replicates

    @classmethod
    def from_config(cls, seed: int, protocol: Mapping[str, Any]) -> ProtocolSettings:
        replicates = protocol.get("pretrain_replicates", 1)
        return cls(seed=int(seed), trials=int(protocol.get("trials", 0)), chunk_size=int(protocol.get("chunk_size", 1)),
                   test_fraction=float(protocol["test_fraction"]),
                   replicates=None if replicates == "per_trial" else int(replicates),
                   group_columns=tuple(protocol.get("group_columns") or ()),
                   per_material=bool(protocol.get("per_material", False)),
                   ensembles_per_job=int(protocol.get("ensembles_per_job", 4)))


@dataclass(frozen=True)
class MultitaskSettings:
    """The joint polymer-solvent model of the chi study (config ``multitask``)."""

    lam: float = 0.5
    encoder_hidden: tuple[int, ...] = (64, 64, 64)
    latent_dim: int = 32
    head_hidden: tuple[int, ...] = (32,)
    activation: str = "relu"
    epochs: int = 500
    lr: float = 1e-3
    weight_decay: float = 1e-4
    exclude_test_pairs_from_source: bool = False

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> MultitaskSettings:
        s = dict(section or {})
        return cls(lam=float(s.get("lambda", 0.5)), encoder_hidden=tuple(s.get("encoder_hidden", (64, 64, 64))),
                   latent_dim=int(s.get("latent_dim", 32)), head_hidden=tuple(s.get("head_hidden", (32,))),
                   activation=s.get("activation", "relu"), epochs=int(s.get("epochs", 500)),
                   lr=float(s.get("lr", 1e-3)), weight_decay=float(s.get("weight_decay", 1e-4)),
                   exclude_test_pairs_from_source=bool(s.get("exclude_test_pairs_from_source", False)))


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a training job of one property needs to know."""

    property: str
    protocol: ProtocolSettings
    model: ModelSettings
    transform_steps: tuple[str, ...]
    transform_fit_on: str
    descriptor: DescriptorTransformSettings
    multitask: MultitaskSettings
    device: str = "auto"
    input_kind: str = "smiles"

    @classmethod
    def from_slices(cls, property_name: str, slices: Mapping[str, Any]) -> TrainingSettings:
        """From the config slices a training rule declares: ``seed``, ``device``, ``protocol``, ``model``,
        ``multitask``, ``descriptor``, ``input_kind`` and ``property`` (the property's own entry) or
        ``properties`` (all of them)."""
        prop = slices["property"] if "property" in slices else slices["properties"][property_name]
        return cls(property=property_name,
                   protocol=ProtocolSettings.from_config(slices["seed"], slices["protocol"]),
                   model=ModelSettings.from_config(slices.get("model") or DEFAULT_MODEL),
                   transform_steps=tuple(prop.get("transform", ("standardize",))),
                   transform_fit_on=prop.get("transform_fit_on", "each"),
                   descriptor=DescriptorTransformSettings.from_config(slices.get("descriptor") or {}),
                   multitask=MultitaskSettings.from_config(slices.get("multitask")),
                   device=slices.get("device", "auto"), input_kind=slices.get("input_kind", "smiles"))
