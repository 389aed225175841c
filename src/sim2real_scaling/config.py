"""Study configuration: loading, schema validation with defaults, and the resolved grids.

The JSON schema (``workflow/schemas/config.schema.yaml``) is the reference documentation of every key. Validation
fills in defaults and rejects unknown keys and wrong types with a message naming the key's path, so a
typo never falls back silently to a default.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

# the workflow's schema (the Snakemake template's place for it); the package is used from its checkout
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The study configuration is invalid; the message names the key."""


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        where = _key_path(error)
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        close = [m for k in extra for m in difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)]
        hints = ([f"did you mean {', '.join(close)}?"] if close else []) + \
            ([f"allowed: {', '.join(allowed)}"] if allowed else [])
        return f"unknown config key {keys}" + (f" ({' '.join(hints)})" if hints else "")
    if error.validator in ("oneOf", "anyOf") and error.context:
        # the value has the kind of one alternative but fails inside it (a list item, a missing or unknown
        # key): describe that error; a value of no allowed kind: say what each alternative expects instead
        # of jsonschema's "is not valid under any of the given schemas"
        by_alternative: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            by_alternative.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        right_kind = [subs for subs in by_alternative.values()
                      if not any(e.validator == "type" and not e.relative_path for e in subs)]
        if len(right_kind) == 1:
            return _describe(max(right_kind[0], key=lambda e: len(e.relative_path)))
        expected = " or ".join(_expected(alt) for alt in error.validator_value)
        return f"config key {_key_path(error)}: {error.instance!r} is not valid; expected {expected}"
    return f"config key {_key_path(error)}: {error.message}"


def _expected(schema: Mapping[str, Any], plural: bool = False) -> str:
    """A short phrase for what a (sub)schema accepts, e.g. "a list of integers >= 1"."""
    if "enum" in schema:
        values = schema["enum"]
        return repr(values[0]) if len(values) == 1 else f"one of {values}"
    kind = schema.get("type")
    bounds = "".join(f" {op} {schema[key]}" for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                             ("maximum", "<="), ("exclusiveMaximum", "<"))
                     if key in schema)
    if kind == "null":
        return "null"
    if kind == "array":
        return "a list" + (f" of {_expected(schema['items'], plural=True)}" if "items" in schema else "")
    if kind == "object":
        required = schema.get("required")
        return ("mappings" if plural else "a mapping") + (f" with keys {', '.join(required)}" if required else "")
    if kind in ("integer", "number", "string", "boolean"):
        return (f"{kind}s" if plural else f"{'an' if kind == 'integer' else 'a'} {kind}") + bounds
    return "values of another kind" if plural else "a value of another kind"


def _resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _coerce_strings(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """Turn strings into numbers/booleans where the schema asks for them.

    ``snakemake --config protocol='{trials: 20}'`` hands nested values over as strings; a string that
    reads (as YAML) into the type the schema expects is taken as that value.
    """
    schema = _resolve_ref(schema, root)
    for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
        coerced = _coerce_strings(copy.deepcopy(instance), alternative, root)
        if coerced != instance:
            return coerced
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_coerce_strings(v, schema["items"], root) for v in instance]
    if isinstance(instance, str):
        wanted = schema.get("type")
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if any(t in ("integer", "number", "boolean", "array", "null") for t in wanted):
            try:
                value = yaml.safe_load(instance)
            except yaml.YAMLError:
                return instance
            if isinstance(value, str) and "number" in wanted:  # YAML 1.1 reads '1e-3' as a string
                try:
                    value = float(value)
                except ValueError:
                    return instance
            ok = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                  "boolean": lambda v: isinstance(v, bool), "array": lambda v: isinstance(v, list),
                  "null": lambda v: v is None}
            if any(t in ok and ok[t](value) for t in wanted):
                return value
        return instance
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                instance[key] = _coerce_strings(value, sub, root)
    return instance


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of ``config`` with defaults filled in; raise :class:`ConfigError` if invalid.

    The workflow does the same in place (workflow/rules/common.smk): :func:`coerce_config`, Snakemake's own
    ``snakemake.utils.validate`` against the schema (which fills in the schema's defaults), then
    :func:`check_semantics`; this function is that sequence for the package, its tests and the CLI.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"the config must be a mapping of keys (study:, properties:, ...), not a "
                          f"{type(config).__name__}")
    resolved = coerce_config(copy.deepcopy(dict(config)))
    validate_with_defaults(resolved)
    check_semantics(resolved)
    for prop in resolved["properties"].values():  # `{data}` in a table path: the folder data.dir
        for side in ("source", "target"):
            prop[side]["path"] = table_path(prop[side]["path"], resolved["data"]["dir"])
    return resolved


DATA_PLACEHOLDER = "{data}"


def table_path(path: str | Path, data_dir: str | Path) -> str:
    """A table path of the config with ``{data}`` replaced by the data folder (config ``data.dir``)."""
    return str(path).replace(DATA_PLACEHOLDER, str(data_dir))


def coerce_config(config: dict[str, Any]) -> dict[str, Any]:
    """Strings from the command line read as the types the schema asks for (see :func:`_coerce_strings`)."""
    schema = load_schema()
    return _coerce_strings(config, schema, schema)


def validate_with_defaults(config: dict[str, Any]) -> None:
    """``snakemake.utils.validate`` against the schema (defaults filled in, in place); its error as one
    :class:`ConfigError` line naming the key."""
    from snakemake.utils import validate
    from snakemake_interface_common.exceptions import WorkflowError

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as exc:
        raise ConfigError(describe_validation_error(exc, config)) from None


def describe_validation_error(exc: BaseException, config: Mapping[str, Any]) -> str:
    """The errors of a config that ``snakemake.utils.validate`` refused, in one line naming each key.

    Snakemake raises the first error only; the schema's plain validator lists them all (up to 5), so that
    a user fixes a config in one go.
    """
    schema = load_schema()
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(config),
                    key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        return "; ".join(_describe(e) for e in errors[:5])
    cause = exc.__cause__ or exc.__context__
    return _describe(cause) if isinstance(cause, jsonschema.ValidationError) else " ".join(str(exc).split())


def check_semantics(config: dict[str, Any]) -> None:
    """What the schema cannot say (a step listed twice, a descriptor that does not fit the input kind)."""
    _check_semantics(config)


def _check_semantics(config: dict[str, Any]) -> None:
    protocol = config["protocol"]
    if protocol["chunk_size"] > protocol["trials"]:
        protocol["chunk_size"] = protocol["trials"]
    for name, prop in config["properties"].items():
        for step in prop["transform"]:
            if prop["transform"].count(step) > 1:
                raise ConfigError(f"config key properties.{name}.transform: '{step}' listed twice")
    if config["input_kind"] == "composition" and config["descriptor"]["set"] not in ("composition_kmd",):
        raise ConfigError(
            "config key descriptor.set: input_kind 'composition' needs the 'composition_kmd' descriptor, "
            f"not '{config['descriptor']['set']}'"
        )


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, merge ``overrides`` (nested dicts) and validate it."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if overrides:
        config = deep_merge(config, overrides)
    try:
        return validate_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def n_grid_size(config: Mapping[str, Any]) -> int:
    """Number of n values (known before the data are read, so the DAG can be built)."""
    grid = config["grid"]
    return len(grid["n"]) if isinstance(grid["n"], list) else int(grid["n_points"])


def resolve_n_grid(config: Mapping[str, Any], source_size: int, property_name: str = "") -> list[int]:
    """The n values for a source table of ``source_size`` valid rows.

    ``auto``: ``n_points`` log-spaced integers from ``n_min`` to ``source_size`` (both included), made
    strictly increasing. An explicit list must not exceed the source size.
    """
    grid = config["grid"]
    where = f"properties.{property_name}" if property_name else "the source table"
    if isinstance(grid["n"], list):
        values = [int(v) for v in grid["n"]]
        too_big = [v for v in values if v > source_size]
        if too_big:
            raise ConfigError(
                f"config key grid.n: {too_big} larger than the {source_size} valid source rows of {where}"
            )
        if sorted(set(values)) != values:
            raise ConfigError(f"config key grid.n: values must be strictly increasing, got {values}")
        return values
    n_min, points = int(grid["n_min"]), int(grid["n_points"])
    if source_size < n_min:
        raise ConfigError(
            f"config key grid.n_min: {n_min} is larger than the {source_size} valid source rows of {where}"
        )
    if points == 1:
        return [source_size]
    raw = np.geomspace(n_min, source_size, points)
    values = [int(round(v)) for v in raw]
    values[-1] = source_size
    for i in range(1, len(values)):  # strictly increasing even when the range is narrow
        values[i] = max(values[i], values[i - 1] + 1)
    if values[-1] > source_size:
        raise ConfigError(
            f"config key grid.n_points: {points} distinct values do not fit between n_min={n_min} "
            f"and the {source_size} valid source rows of {where}"
        )
    return values


def _m_spec(config: Mapping[str, Any], property_name: str) -> tuple[list[float | int] | None, str]:
    """The m grid as configured for a property (its own grid_m, else grid.m) and the key it came from."""
    own = config["properties"].get(property_name, {}).get("grid_m") if property_name else None
    if own is not None:
        return own, f"properties.{property_name}.grid_m"
    return config["grid"]["m"], "grid.m"


def resolve_m_grid(config: Mapping[str, Any], train_size: int, property_name: str = "") -> list[int]:
    """The experimental training sizes m for a training part of ``train_size`` rows (ascending)."""
    spec, key = _m_spec(config, property_name)
    if spec is None:
        return [train_size]
    values = []
    for v in spec:
        # floats up to 1 are fractions of the training part; integers are sizes
        m = int(round(v * train_size)) if isinstance(v, float) and v <= 1 else int(v)
        if m > train_size:
            raise ConfigError(
                f"config key {key}: {v} asks for {m} training samples but properties.{property_name} has only "
                f"{train_size} in the training part ({1 - config['protocol']['test_fraction']:.0%} of the target)"
            )
        if m < 2:
            raise ConfigError(f"config key {key}: {v} gives m={m}; at least 2 training samples are needed")
        values.append(m)
    return sorted(set(values))


def m_grid_size(config: Mapping[str, Any], property_name: str) -> int:
    """Number of m values of a property's grid (before the data are read; sizes that round alike count once
    later, so this is an upper bound)."""
    spec, _ = _m_spec(config, property_name)
    return 1 if spec is None else len(spec)


def n_blocks(config: Mapping[str, Any], property_name: str) -> list[list[int]]:
    """The n indices each training job of a property covers (consecutive, as equal in size as possible).

    A job trains about ``protocol.ensembles_per_job`` (n, m) ensembles: ``ensembles_per_job // m values``
    n per job, at least one.
    """
    n_total = n_grid_size(config)
    per_job = max(1, config["protocol"]["ensembles_per_job"] // m_grid_size(config, property_name))
    jobs = -(-n_total // per_job)
    return [block.tolist() for block in np.array_split(np.arange(n_total), jobs)]


def block_name(n_indices: list[int]) -> str:
    """How files name a block of n indices: ``"3"`` or ``"0-3"`` (so that a block of other n, after a change
    of ``ensembles_per_job``, never takes the place of an old file)."""
    first, last = n_indices[0], n_indices[-1]
    return f"{first}" if first == last else f"{first}-{last}"


def n_chunks(config: Mapping[str, Any]) -> int:
    protocol = config["protocol"]
    return -(-protocol["trials"] // protocol["chunk_size"])


def chunk_trials(config: Mapping[str, Any], chunk: int) -> list[int]:
    """Trial indices of chunk ``chunk`` (0-based)."""
    protocol = config["protocol"]
    start = chunk * protocol["chunk_size"]
    return list(range(start, min(start + protocol["chunk_size"], protocol["trials"])))


def settings_digest(obj: Any) -> str:
    """Short stable hash of JSON-serialisable settings (used for cache keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
