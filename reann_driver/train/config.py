"""Training configuration: typed sections with documented defaults, read from YAML or TOML.

Every key has a default and a one-line description (the ``help`` metadata), from which
``reann train --print-defaults`` writes a commented template. Unknown keys and values of the
wrong type are rejected with an error naming the key (``train.lr: expected float, got 'abc'``).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ..errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used: unreadable file, unknown key, wrong type or value."""


def _help(text: str) -> dict[str, str]:
    """Field metadata holding the one-line description used in the template."""
    return {"help": text}


@dataclass
class DataConfig:
    """Where the labelled structures are (standard extxyz: energies in eV, forces in eV/Å)."""

    split_dir: str | None = field(
        default=None,
        metadata=_help("directory written by `reann-data split` (train.extxyz, val.extxyz, test.extxyz)"),
    )
    train: str | None = field(
        default=None, metadata=_help("training set file (overrides split_dir/train.extxyz)")
    )
    val: str | None = field(
        default=None, metadata=_help("validation set file (overrides split_dir/val.extxyz)")
    )
    test: str | None = field(
        default=None, metadata=_help("test set file, evaluated with the best model at the end (optional)")
    )
    reference_energies: dict[str, float] | None = field(
        default=None,
        metadata=_help(
            "per-element reference energies in eV, e.g. {H: -13.6, O: -2041.}; "
            "null: least squares on the training compositions (mean energy per atom when not identifiable)"
        ),
    )


@dataclass
class ModelConfig:
    """Keyword arguments of reann_driver.REANN (see its docstring)."""

    species: list[str] | None = field(
        default=None, metadata=_help("element symbols in model order; null: those of the training set")
    )
    cutoff: float = field(default=5.0, metadata=_help("neighbour cutoff r_c in Å"))
    n_radial: int = field(default=8, metadata=_help("radial Gaussians per neighbour element"))
    l_max: int = field(default=2, metadata=_help("highest angular momentum of the orbitals"))
    iterations: int = field(
        default=2, metadata=_help("recursive coefficient updates (message passing); 0 is EANN")
    )
    hidden: list[int] = field(
        default_factory=lambda: [64, 64], metadata=_help("hidden-layer widths of the atomic-energy networks")
    )
    coefficient_hidden: list[int] | None = field(
        default=None, metadata=_help("widths of the coefficient networks; null: = hidden")
    )
    n_orbitals: int | None = field(
        default=None, metadata=_help("density components; null: n_radial (n_radial + 1) / 2 (l_max + 1)")
    )
    angular: Literal["cartesian", "spherical"] = field(
        default="cartesian", metadata=_help("angular basis: cartesian or spherical")
    )
    activation: Literal["relu_like", "silu", "tanh", "gelu", "softplus", "identity"] = field(
        default="relu_like",
        metadata=_help("activation; relu_like: alpha silu(beta x), trainable per neuron (original REANN)"),
    )
    layer_norm: bool = field(default=True, metadata=_help("LayerNorm inside the residual blocks"))
    network_layout: Literal["reference", "pre_norm"] = field(
        default="reference",
        metadata=_help("reference: the original REANN residual block, zero output layer; pre_norm: 0.1"),
    )
    shared_mixing: bool = field(
        default=False, metadata=_help("one set of orbital mixing matrices for all iterations (0.1)")
    )
    radial_init: Literal["graded", "wide", "reference", "narrow"] = field(
        default="graded",
        metadata=_help(
            "radial Gaussians: graded (centres evenly spaced on [0, r_c), alpha from 1.2/Å^2 at r = 0 down "
            "to 0.2), wide (the same, widest at r = 0), reference (original REANN: random centres and "
            "alpha in the same ranges), narrow (0.1)"
        ),
    )
    mixing_init: Literal["orthogonal", "normal"] = field(
        default="orthogonal",
        metadata=_help(
            "orbital mixing matrices: orthogonal (original REANN, same for all L and T) or normal"
        ),
    )
    pair_repulsion: Literal["none", "zbl", "zbl_heavy"] = field(
        default="zbl_heavy",
        metadata=_help(
            "zbl_heavy: add the ZBL nuclear repulsion below the sum of covalent radii to every pair but "
            "H-H (the network learns the rest); zbl: the same on every pair; none: the network alone "
            "(REANN's own default)"
        ),
    )
    initial_coefficient: float | Literal["auto"] = field(
        default="auto",
        metadata=_help(
            "initial orbital coefficients c^0; auto: 1 / the mean number of neighbours within the cutoff in "
            "the training data; the original REANN code uses 1 / neigh_atoms (1/150 in its examples)"
        ),
    )
    dtype: Literal["float32", "float64"] = field(
        default="float64", metadata=_help("parameter and arithmetic precision")
    )


@dataclass
class TrainConfig:
    """Optimisation: AdamW + EMA + ReduceLROnPlateau, energy/force/stress loss."""

    epochs: int = field(
        default=10000,
        metadata=_help("maximum number of epochs (runs normally end at min_lr or max_minutes first)"),
    )
    batch_size: int = field(
        default=8, metadata=_help("structures per optimisation step (global, over all processes)")
    )
    val_batch_size: int | None = field(
        default=None, metadata=_help("structures per validation batch; null: = batch_size")
    )
    lr: float = field(default=1e-3, metadata=_help("initial learning rate"))
    min_lr: float = field(default=1e-5, metadata=_help("stop once the learning rate would fall below this"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW decoupled weight decay"))
    seed: int = field(default=0, metadata=_help("seed of the weight initialisation and of the batch order"))
    device: str = field(default="auto", metadata=_help("cpu, cuda, cuda:N or auto (cuda when available)"))
    loss: Literal["weighted", "reference"] = field(
        default="weighted",
        metadata=_help(
            "weighted: w_E mean((dE/N)^2) + w_F mean(dF^2) + w_S mean(dS^2); "
            "reference: original REANN, sum dE^2 + f(lr) sum dF^2"
        ),
    )
    energy_weight: float | None = field(
        default=None,
        metadata=_help(
            "weight of the per-atom energy MSE ((eV/atom)^-2); null: force_weight x 1 Å^-2, or without "
            "forces 1 / mean square training energy per atom about the reference energies"
        ),
    )
    force_weight: float | None = field(
        default=None,
        metadata=_help(
            "weight of the force-component MSE ((eV/Å)^-2); null: 1 / mean square training force component"
        ),
    )
    stress_weight: float = field(
        default=1.0, metadata=_help("weight of the stress-component MSE ((eV/Å^3)^2), frames with stress")
    )
    init_f: float = field(
        default=10.0, metadata=_help("reference loss: force weight at the initial learning rate")
    )
    final_f: float = field(
        default=0.5, metadata=_help("reference loss: force weight at min_lr (linear in lr in between)")
    )
    ema_decay: float | Literal["auto"] | None = field(
        default="auto",
        metadata=_help(
            "exponential moving average of the weights per step; auto: 1 - 1/min(1000, patience steps / 2) "
            "(1 - 1/1000 without a plateau schedule); null: off"
        ),
    )
    scheduler_patience: int | None = field(
        default=None,
        metadata=_help(
            "epochs without validation improvement before lowering the lr; null: about 1000 optimizer steps "
            "(at least 10 epochs), or no plateau schedule when max_minutes is set (the budget sets the lr)"
        ),
    )
    scheduler_factor: float = field(
        default=0.5, metadata=_help("lr multiplier on a plateau and after a divergence")
    )
    grad_clip: float | None = field(
        default=100.0, metadata=_help("clip the gradient norm to this; null: no clipping")
    )
    divergence_factor: float = field(
        default=100.0,
        metadata=_help(
            "a validation loss above this multiple of the best (or non-finite) reloads the best state"
        ),
    )
    refit_energy_shift: bool = field(
        default=True,
        metadata=_help(
            "at the end, add to the per-element energies of the best model the least-squares shift of its "
            "training-set energy residuals (forces unchanged)"
        ),
    )
    max_minutes: float | None = field(
        default=None,
        metadata=_help(
            "wall-time budget (minutes): the lr is held for the first 25 % and annealed exponentially to "
            "min_lr over the rest (capping the plateau schedule, which is off unless scheduler_patience is "
            "set); the run stops at the end of the epoch that exceeds it"
        ),
    )
    committee: int = field(
        default=1,
        metadata=_help(
            "K > 1: train K members one after another (seeds seed, seed+1, ...; output.dir/member_k) "
            "and bundle them into output.dir/committee.pt"
        ),
    )
    bootstrap: bool = field(
        default=False,
        metadata=_help("committee: train each member on a bootstrap resample of the training set"),
    )


@dataclass
class OutputConfig:
    """Where the run writes checkpoints, logs and the final model."""

    dir: str = field(
        default="reann_run", metadata=_help("run directory (checkpoints, metrics.csv, train.log, model.pt)")
    )
    tensorboard: bool = field(
        default=True,
        metadata=_help("also log to TensorBoard (extra 'tensorboard'; a note in the log when it is missing)"),
    )
    progress: bool = field(default=True, metadata=_help("show a progress bar per epoch (on terminals)"))


@dataclass
class Config:
    """A complete training configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict."""
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "output": OutputConfig,
}


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is not None:
        return str(hint).replace("typing.", "")
    return hint.__name__


def _convert(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the type ``hint``; ints are accepted where floats are expected."""
    origin = typing.get_origin(hint)
    error = ConfigError(f"{key}: expected {_type_name(hint)}, got {value!r}")
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise error
    if hint is type(None):
        if value is None:
            return None
        raise error
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        raise error
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise error
        (item,) = typing.get_args(hint)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise error
        key_type, value_type = typing.get_args(hint)
        return {_convert(k, key_type, key): _convert(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise error from None
        raise error
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise error
    if isinstance(value, hint):
        return value
    raise error


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """A checked ``Config`` from nested dicts (missing keys take their defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    unknown = sorted(set(raw) - SECTIONS.keys())
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    sections = {}
    for name, cls in SECTIONS.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: expected a mapping of keys, got {values!r}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"{name}.{key}: unknown key; known keys: {', '.join(sorted(known))}")
        sections[name] = cls(**{k: _convert(v, hints[k], f"{name}.{k}") for k, v in values.items()})
    config = Config(**sections)
    check_values(config)
    return config


def check_values(config: Config) -> None:
    """Range checks that types alone cannot express."""
    train = config.train
    positive = {
        "train.epochs": train.epochs,
        "train.batch_size": train.batch_size,
        "train.lr": train.lr,
        "train.min_lr": train.min_lr,
        "model.cutoff": config.model.cutoff,
        "model.n_radial": config.model.n_radial,
        "train.committee": train.committee,
    }
    optional = {
        "train.max_minutes": train.max_minutes,
        "train.scheduler_patience": train.scheduler_patience,
        "train.energy_weight": train.energy_weight,
        "train.force_weight": train.force_weight,
    }
    for key, value in optional.items():
        if value is not None and not value >= 0:
            raise ConfigError(f"{key}: must not be negative, got {value!r}")
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key}: must be positive, got {value!r}")
    if not 0.0 < train.scheduler_factor < 1.0:
        raise ConfigError(f"train.scheduler_factor: must lie in (0, 1), got {train.scheduler_factor!r}")
    if isinstance(train.ema_decay, float) and not 0.0 <= train.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay: must lie in [0, 1), got {train.ema_decay!r}")
    coefficient = config.model.initial_coefficient
    if coefficient != "auto" and not coefficient > 0:
        raise ConfigError(f"model.initial_coefficient: must be positive or auto, got {coefficient!r}")
    if train.min_lr > train.lr:
        raise ConfigError(f"train.min_lr ({train.min_lr}) exceeds train.lr ({train.lr})")


def check_resumable(stored: dict[str, Any], current: dict[str, Any], section: str = "model") -> None:
    """Refuse to resume when a key of ``section`` differs from the checkpoint's; the error names each key
    with both values (checked before the run directory is touched)."""
    differing = [
        f"{section}.{key}: {stored.get(key)!r} in the checkpoint, {current.get(key)!r} now"
        for key in sorted(set(stored) | set(current))
        if stored.get(key) != current.get(key)
    ]
    if differing:
        raise ConfigError(
            "--resume: the model differs from the checkpoint's (" + "; ".join(differing) + "); resume "
            "with the run's own config.yaml, or start a new run in another output.dir"
        )


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Nested dict from a YAML (.yaml/.yml) or TOML (.toml) file."""
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read config file {str(source)!r}: {error}") from error
    try:
        if source.suffix.lower() == ".toml":
            return tomllib.loads(text)
        loaded = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(
            f"{source}: not valid {source.suffix.lstrip('.').upper() or 'YAML'}: {error}"
        ) from error
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    return loaded or {}


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML: 1e-3, [64, 64], null, true)."""
    result = {name: dict(values or {}) for name, values in raw.items()}
    for item in overrides:
        name, separator, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not separator or not dot or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-3")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {error}") from error
        if section not in result and section in SECTIONS:
            result[section] = {}
        if section not in result:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; known: {', '.join(SECTIONS)}")
        result[section][key] = value
    return result


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read, override and check a configuration (``path`` None: defaults plus overrides)."""
    raw = read_config_file(path) if path is not None else {}
    raw = apply_overrides(raw, overrides or [])
    return config_from_dict(raw, str(path) if path is not None else "config")


def defaults_template() -> str:
    """A YAML template with every key at its default and its description as a comment."""
    lines = [
        "# reann train configuration: every key with its default value.",
        "# Units: Å, eV, eV/Å. Override any key on the command line: --set train.lr=5e-4",
    ]
    defaults = Config()
    for name, cls in SECTIONS.items():
        lines.append("")
        lines.append(f"{name}:  # {cls.__doc__}")
        section = getattr(defaults, name)
        for f in dataclasses.fields(cls):
            value = yaml.safe_dump(getattr(section, f.name), default_flow_style=True).strip()
            value = value.removesuffix("...").strip()
            lines.append(f"  {f.name}: {value}  # {f.metadata['help']}")
    return "\n".join(lines) + "\n"
