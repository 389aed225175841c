"""The output contract: the columns and method names of the tables that training jobs write and the analysis,
the report and the command-line tool read.

``trials.csv`` (one row per trained model or reference per trial):

* ``property, method, n, m, trial``: the key. ``method`` names the strategy (:data:`TRANSFER_METHODS`: the model
  used ``n`` source rows; :data:`REFERENCE_METHODS`: it did not, ``n = 0``). ``m``: experimental training rows.
* ``replicate``: the pretraining draw (which n source rows, which initial weights) the trial's transfer models
  start from, the same for every method and n of that trial (``trial mod replicates``, or ``trial`` when every
  trial pretrains its own network). Bootstraps resample replicates, then trials within them.
* ``mae``: test MAE in the property's own units; ``mae_sim_rows``: the MAE on those test rows whose material also
  has a simulated (source) value, ``sim_rows`` of them (0 and NaN where none has), so every method can be
  compared with the simulation itself on the same rows.
* ``train_loss``: final training loss (transformed scale); ``val_mae``: the validation MAE of the chosen setting
  (property units; NaN without model selection); ``epochs, lr, weight_decay``: the chosen training length and
  optimiser settings; ``selection``: how they were chosen (``cv5``, ``holdout``, ``fixed``, ``none``).
* ``status``: ``ok``, ``diverged`` (NaN MAE; left out of every mean and fit) or, for the ``simulation`` reference,
  ``no_reference`` (none of the trial's test rows, or fewer than 3 of its training rows, has a simulated value:
  nothing to compare, by design, not a failure).

``group_trials.csv``: the MAE on the test rows of one class in one trial; ``material_errors.csv``: summed absolute
errors per test material.
"""

from __future__ import annotations

TRIAL_KEYS: tuple[str, ...] = ("property", "method", "n", "m", "trial")
TRIAL_COLUMNS: tuple[str, ...] = (
    "property", "method", "n", "m", "trial", "replicate", "mae", "mae_sim_rows", "sim_rows", "train_loss",
    "val_mae", "epochs", "lr", "weight_decay", "selection", "status",
)
GROUP_COLUMNS: tuple[str, ...] = (
    "property", "method", "n", "m", "trial", "replicate", "group_by", "group", "mae", "count",
)
MATERIAL_COLUMNS: tuple[str, ...] = ("property", "method", "n", "m", "material", "abs_error_sum", "count")

#: strategies that learn from n source rows (n > 0 in the tables)
TRANSFER_METHODS: tuple[str, ...] = ("finetune", "multitask", "feature_extraction", "affine")
#: baselines without source rows (n = 0): learning from the experiments alone, and the simulated value itself
REFERENCE_METHODS: tuple[str, ...] = ("direct", "simulation")
#: names older tables used; readers map them to the current name
LEGACY_METHOD_NAMES: dict[str, str] = {"transfer": "finetune"}
#: how figures and reports name each method
METHOD_LABELS: dict[str, str] = {
    "finetune": "transfer (fine-tuning)",
    "multitask": "transfer (multitask)",
    "feature_extraction": "transfer (feature extraction)",
    "affine": "transfer (affine model transfer)",
    "direct": "direct learning",
    "simulation": "simulation (recalibrated)",
}
STATUSES: tuple[str, ...] = ("ok", "diverged", "no_reference")


def canonical_method(method: str) -> str:
    """The current name of a method (``transfer`` in older tables is ``finetune``)."""
    return LEGACY_METHOD_NAMES.get(method, method)


def is_transfer(method: str) -> bool:
    """Whether ``method`` learns from source rows (its rows have n > 0)."""
    return canonical_method(method) in TRANSFER_METHODS
