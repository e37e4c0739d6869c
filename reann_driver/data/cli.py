"""The ``reann-data`` command: convert, validate, describe, split and generate datasets (thin click layer)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from ..cli.common import Group, friendly_errors
from . import formats
from .errors import DataError
from .frames import DEFAULT_KEYS, LabelKeys, frame_energy, frame_forces
from .labelers import LABELERS
from .output import atomic_file, check_output
from .recipes import Recipe, load_recipe
from .units import ENERGY_UNITS, FORCE_UNITS, LENGTH_UNITS, UNIT_PRESETS, Units, resolve_units

if TYPE_CHECKING:
    from ase import Atoms

F = TypeVar("F", bound=Callable[..., Any])


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reann-data")
def main() -> None:
    """Datasets for REANN potentials: convert to one standard form, check, describe, split, generate.

    The standard form is extxyz with energies in eV, forces in eV/Å and stress in eV/Å^3 stored as
    calculator results, and info keys source, source_index and config_type.
    """


def source_options(command: F) -> F:
    """Options shared by every command that reads a dataset: format, units and label keys."""
    options = [
        click.option(
            "--from",
            "fmt",
            type=click.Choice(formats.READ_FORMATS),
            default=None,
            help="Input format (auto-detected from the name or first line when omitted).",
        ),
        click.option(
            "--units",
            "unit_preset",
            type=click.Choice(list(UNIT_PRESETS)),
            default=None,
            help="Shorthand: atomic = bohr + hartree + hartree/bohr; ev-angstrom = the package units.",
        ),
        click.option(
            "--length-unit",
            type=click.Choice(list(LENGTH_UNITS)),
            default=None,
            help="Unit of positions and cell.",
        ),
        click.option(
            "--energy-unit",
            type=click.Choice(list(ENERGY_UNITS)),
            default=None,
            help="Unit of energies.",
        ),
        click.option(
            "--force-unit",
            type=click.Choice(list(FORCE_UNITS)),
            default=None,
            help="Unit of forces.",
        ),
        click.option("--energy-key", default=None, help="Info key holding the energy (e.g. TotEnergy)."),
        click.option("--forces-key", default=None, help="Per-atom array holding the forces (e.g. force)."),
        click.option("--stress-key", default=None, help="Info key holding the stress."),
        click.option(
            "--fractional", is_flag=True, help="REANN configuration files: coordinates are fractional."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True)
class SourceSpec:
    """How to read a source, from the shared options."""

    fmt: str | None
    units: Units
    keys: LabelKeys
    fractional: bool


def source_spec(options: dict[str, Any]) -> SourceSpec:
    """Pop the shared source options from a command's keyword arguments."""
    try:
        units = resolve_units(
            options.pop("unit_preset"),
            options.pop("length_unit"),
            options.pop("energy_unit"),
            options.pop("force_unit"),
        )
    except ValueError as error:
        raise DataError(str(error)) from None
    keys = LabelKeys(options.pop("energy_key"), options.pop("forces_key"), options.pop("stress_key"))
    return SourceSpec(options.pop("fmt"), units, keys, options.pop("fractional"))


def read_source(path: str, spec: SourceSpec) -> Iterator[Atoms]:
    return formats.read_frames(path, spec.fmt, units=spec.units, keys=spec.keys, fractional=spec.fractional)


def sampled(frames: Iterator[Atoms], sample: list[Atoms], size: int = 20) -> Iterator[Atoms]:
    """Pass ``frames`` through, keeping the first ``size`` in ``sample`` (for the unit checks)."""
    for atoms in frames:
        if len(sample) < size:
            sample.append(atoms)
        yield atoms


def units_warnings(spec: SourceSpec, sample: list[Atoms]) -> list[str]:
    """Unit slips: a mix of unit systems in the options, and converted values that look implausible."""
    from .validate import unit_warnings

    mismatch = spec.units.mismatch()
    return ([mismatch] if mismatch else []) + unit_warnings(sample)


@main.command()
@click.argument("source", type=click.Path(exists=True))
@click.argument("out", type=click.Path())
@source_options
@click.option(
    "--to",
    "out_format",
    type=click.Choice(formats.WRITE_FORMATS),
    default="extxyz",
    show_default=True,
    help="Output format: extxyz is the standard form; the others are exports (in eV and Å).",
)
@click.option("--config-type", default=None, help="Set info['config_type'] of every frame.")
@click.option("--force", is_flag=True, help="Overwrite OUT.")
@friendly_errors
def convert(
    source: str, out: str, out_format: str, config_type: str | None, force: bool, **options: Any
) -> None:
    """Convert SOURCE to the standard form (or export it) in OUT.

    \b
    Examples:
      reann-data convert H2O_RPBE-D3.input.data water.extxyz --units atomic
      reann-data convert dataset_1593.xyz water.extxyz --units atomic \\
          --energy-key TotEnergy --forces-key force
      reann-data convert deepmd/data water.extxyz --from deepmd
      reann-data convert water.extxyz configuration --to reann
    """
    spec = source_spec(options)
    check_output(out, [source], force=force, directory=out_format == "deepmd")
    checked: list[Atoms] = []
    unlabelled = {"energy": 0, "forces": 0}

    def frames() -> Iterator[Atoms]:
        for atoms in formats.read_frames(
            source,
            spec.fmt,
            units=spec.units,
            keys=spec.keys,
            config_type=config_type,
            fractional=spec.fractional,
        ):
            if len(checked) < 20:
                checked.append(atoms)
            unlabelled["energy"] += frame_energy(atoms) is None
            unlabelled["forces"] += frame_forces(atoms) is None
            yield atoms

    written = formats.write_frames(out, frames(), out_format, force=force)
    for warning in units_warnings(spec, checked):
        click.echo(f"warning: units: {warning}", err=True)
    for label, key in (("energy", spec.keys.energy), ("forces", spec.keys.forces)):
        if unlabelled[label]:
            hint = f"looked for {key!r}" if key else "use --energy-key/--forces-key if the file names them"
            click.echo(f"warning: {unlabelled[label]} of {written} frames have no {label} ({hint})", err=True)
    click.echo(f"wrote {written} frames to {out} ({out_format}; units in: {spec.units.describe()})")


@main.command()
@click.argument("source", type=click.Path(exists=True))
@source_options
@click.option(
    "--min-distance",
    type=click.FloatRange(0, min_open=True),
    default=0.5,
    show_default=True,
    help="Atoms closer than this (Å) are an error.",
)
@click.option("--no-forces", is_flag=True, help="Do not require forces (energy-only data).")
@click.option(
    "--outlier-z",
    type=float,
    default=10.0,
    show_default=True,
    help="Robust z-score beyond which a frame is an outlier.",
)
@click.option(
    "--show", type=int, default=20, show_default=True, help="Issues printed per kind (all go to --json)."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every issue to this JSON file.",
)
@click.option(
    "--max-force",
    type=click.FloatRange(0, min_open=True),
    default=1e4,
    show_default=True,
    help="Atomic forces beyond this (eV/Å) are an error, however few the frames.",
)
@click.option("--force", is_flag=True, help="Overwrite the --json file.")
@friendly_errors
def validate(
    source: str,
    min_distance: float,
    no_forces: bool,
    outlier_z: float,
    show: int,
    json_path: str | None,
    max_force: float,
    force: bool,
    **options: Any,
) -> None:
    """Check SOURCE frame by frame; exit status 1 when there are errors (warnings alone give 0).

    Errors: non-finite values, missing energies or forces, wrong force shapes, degenerate cells,
    atoms closer than --min-distance. Warnings: duplicate frames, force and energy outliers, values
    that look like the wrong units.

    Example: reann-data validate water.extxyz
    """
    from .validate import validate_frames

    spec = source_spec(options)
    if json_path:
        check_output(json_path, [source], force=force)
    sample: list[Atoms] = []

    report = validate_frames(
        sampled(read_source(source, spec), sample),
        require_forces=not no_forces,
        min_distance=min_distance,
        outlier_threshold=outlier_z,
        max_force=max_force,
    )
    shown: dict[str, int] = {}
    for issue in report.issues:
        shown[issue.code] = shown.get(issue.code, 0) + 1
        if shown[issue.code] <= show:
            click.echo(f"frame {issue.frame}: {issue.severity}: {issue.code}: {issue.message}")
    unit_problems = units_warnings(spec, sample)
    for warning in unit_problems:
        click.echo(f"warning: units: {warning}")
    counts = {**report.counts(), **({"units": len(unit_problems)} if unit_problems else {})}
    click.echo(
        f"{report.frames} frames checked: {len(report.errors)} errors, "
        f"{len(report.warnings) + len(unit_problems)} warnings {counts}"
    )
    if json_path:
        with atomic_file(json_path, force=force) as temporary:
            payload = {
                "frames": report.frames,
                "counts": counts,
                "unit_warnings": unit_problems,
                "issues": [asdict(i) for i in report.issues],
            }
            temporary.write_text(json.dumps(payload, indent=1) + "\n")
    if report.errors:
        raise SystemExit(1)


def parse_isolated_atoms(values: tuple[str, ...]) -> dict[str, float] | None:
    """``("H=-13.6", "O=-432.1")`` -> ``{"H": -13.6, "O": -432.1}``."""
    if not values:
        return None
    energies = {}
    for value in values:
        symbol, _, energy = value.partition("=")
        try:
            energies[symbol.strip()] = float(energy)
        except ValueError:
            raise DataError(f"--isolated-atom expects SYMBOL=ENERGY_eV, got {value!r}") from None
    return energies


@main.command()
@click.argument("source", type=click.Path(exists=True))
@source_options
@click.option(
    "--cutoff",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Also count neighbours within this radius (Å).",
)
@click.option("--isolated-atom", multiple=True, help="Isolated-atom energy, SYMBOL=eV (repeat per element).")
@click.option(
    "--plot", type=click.Path(dir_okay=False), default=None, help="Write histograms to this PNG file."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--force", is_flag=True, help="Overwrite the --plot file.")
@friendly_errors
def stats(
    source: str,
    cutoff: float | None,
    isolated_atom: tuple[str, ...],
    plot: str | None,
    as_json: bool,
    force: bool,
    **options: Any,
) -> None:
    """Describe SOURCE: frames, composition, energy per atom, force RMS per element, neighbour counts and
    per-element reference energies (or why they cannot be fitted).

    Example: reann-data stats water.extxyz --cutoff 5.0 --plot water.png
    """
    from .stats import check_plot_output, dataset_statistics, plot_histograms

    spec = source_spec(options)
    sample: list[Atoms] = []

    if plot:
        check_plot_output(plot, [source], force=force)
    statistics = dataset_statistics(
        sampled(read_source(source, spec), sample),
        cutoff=cutoff,
        isolated_atoms=parse_isolated_atoms(isolated_atom),
        keep_values=plot is not None,
    )
    report = statistics.report()
    if plot:
        plot_histograms(statistics, plot, force=force)
        report["plot"] = plot
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))
    for warning in units_warnings(spec, sample):  # stderr: the JSON report stays parseable
        click.echo(f"warning: units: {warning}", err=True)


def format_report(report: dict[str, Any]) -> str:
    """Human-readable form of a statistics report."""
    lines = [f"frames: {report['frames']}   atoms: {report['atoms']}"]
    lines.append("formulas: " + ", ".join(f"{k} x{v}" for k, v in report["formulas"].items()))
    lines.append("elements: " + ", ".join(f"{k} {v}" for k, v in report["elements"].items()))
    lines.append("config types: " + ", ".join(f"{k} x{v}" for k, v in report["config_types"].items()))
    energy = report["energy_per_atom_eV"]
    if energy["count"]:
        lines.append(
            f"energy per atom (eV): mean {energy['mean']:.6f}  std {energy['std']:.6f}  "
            f"min {energy['min']:.6f}  max {energy['max']:.6f}"
        )
    lines.append(
        f"frames without energy: {report['frames_without_energy']}   "
        f"without forces: {report['frames_without_forces']}"
    )
    if report["force_rms_per_element_eV_per_A"]:
        lines.append(
            "force RMS per element (eV/Å): "
            + ", ".join(f"{k} {v:.4f}" for k, v in report["force_rms_per_element_eV_per_A"].items())
            + f"   largest atomic force {report['max_atomic_force_eV_per_A']:.4f}"
        )
    if "neighbours" in report:
        n = report["neighbours"]
        if n["count"]:
            lines.append(
                f"neighbours within {n['cutoff_A']} Å: mean {n['mean']:.2f}  std {n['std']:.2f}  "
                f"min {n['min']:.0f}  max {n['max']:.0f}"
            )
    reference = report["reference_energies"]
    if reference["identifiable"]:
        lines.append(
            "reference energies (least squares, eV): "
            + ", ".join(f"{k} {v:.6f}" for k, v in reference["energies_eV"].items())
            + f"   fit RMSE {reference['fit_rmse_eV_per_frame']:.4f} eV/frame"
        )
    else:
        lines.append(f"reference energies: not identifiable: {reference['reason']}")
    if "binding_energy_per_atom_eV" in report:
        b = report["binding_energy_per_atom_eV"]
        if b["count"]:
            lines.append(
                f"energy per atom relative to isolated atoms (eV): mean {b['mean']:.6f}  std {b['std']:.6f}"
            )
    if "plot" in report:
        lines.append(f"histograms written to {report['plot']}")
    return "\n".join(lines)


@main.command()
@click.argument("source", type=click.Path(exists=True))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder to create for the split."
)
@click.option(
    "--recipe", "recipe_name", default=None, help="Recipe name (datasets/NAME/recipe.toml) or path."
)
@click.option(
    "--seed", type=int, default=None, help="Seed (required without a recipe; overrides the recipe's)."
)
@click.option("--test", "test_size", default=None, help="Test size: a fraction (0.1) or a count (1000).")
@click.option("--val", "val_size", default=None, help="Validation size: a fraction or a count.")
@click.option("--train", "train_size", default=None, help="Training size (default: all remaining frames).")
@click.option(
    "--subsets", default=None, help="Nested learning-curve subset sizes of train, e.g. 100,1000,10000."
)
@click.option("--write-subsets", is_flag=True, help="Also write train_N.extxyz for every subset.")
@source_options
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@friendly_errors
def split(
    source: str,
    out: str,
    recipe_name: str | None,
    seed: int | None,
    test_size: str | None,
    val_size: str | None,
    train_size: str | None,
    subsets: str | None,
    write_subsets: bool,
    force: bool,
    **options: Any,
) -> None:
    """Cut a seeded, reproducible train/val/test split of SOURCE into the folder --out.

    Writes train.extxyz, val.extxyz, test.extxyz and manifest.json (recipe, seed, source sha256, the
    source indices of every split, counts, per-split statistics, rejected frames). The same command
    gives byte-identical files. Frames are streamed, so huge sources are fine.

    \b
    Examples:
      reann-data split dataset_1593.xyz --recipe water --out water-split
      reann-data split methane.extxyz.gz --recipe ch4 --out ch4-split
      reann-data split deepmd/data --seed 7 --test 0.1 --val 0.1 --out water-split
    """
    from .split import split_dataset

    spec = source_spec(options)
    if recipe_name:
        recipe = load_recipe(recipe_name)
        check_recipe_format(source, recipe, spec.fmt)
        recipe = replace(  # options given on the command line take precedence over the recipe's
            recipe,
            format=spec.fmt or recipe.format,
            units=recipe.units if spec.units.is_package_units else spec.units,
            # a recipe's label keys belong to its format: another --from starts from the usual places
            keys=recipe.keys
            if spec.keys == DEFAULT_KEYS and spec.fmt in (None, recipe.format)
            else spec.keys,
        )
    else:
        if seed is None:
            raise DataError("give --seed (or a --recipe that holds one)")
        recipe = Recipe(name="custom", seed=seed, format=spec.fmt, units=spec.units, keys=spec.keys)
    rule = recipe.split
    overrides: dict[str, Any] = {}
    for name, value in (("test", test_size), ("val", val_size), ("train", train_size)):
        if value is not None:
            overrides[name] = parse_size(value)
    if subsets is not None:
        overrides["subsets"] = tuple(int(n) for n in subsets.split(",") if n.strip())
    if write_subsets:
        overrides["write_subsets"] = True
    recipe = replace(recipe, split=replace(rule, **overrides), seed=recipe.seed if seed is None else seed)
    manifest = split_dataset(source, recipe, out, force=force, echo=click.echo)
    counts = {name: manifest["splits"][name]["count"] for name in ("train", "val", "test")}
    click.echo(
        f"wrote {out}: {counts}, seed {manifest['seed']}, "
        f"source sha256 {manifest['source']['sha256'][:16]}..."
    )


def check_recipe_format(source: str, recipe: Recipe, fmt: str | None) -> None:
    """Refuse a source that is plainly not in the recipe's format (unless --from says how to read it)."""
    if fmt is not None or recipe.format is None:
        return
    try:
        detected = formats.detect_format(source)
    except DataError:
        return  # no guess: let the recipe's reader try and report the line at fault
    if detected != recipe.format:
        name = recipe.source.get("name")
        expected = f" ({name}, {recipe.source['url']})" if name and recipe.source.get("url") else ""
        raise DataError(
            f"recipe {recipe.name!r} expects {recipe.format} data{expected}, but {source} looks like "
            f"{detected}; split it with --seed/--test/--val instead, or give --from {detected} to apply "
            "the recipe anyway"
        )


def parse_size(value: str) -> float | int:
    """ "0.1" -> 0.1 (a fraction), "1000" -> 1000 (a count)."""
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise DataError(f"split size {value!r} is neither a fraction nor a count") from None


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--source",
    type=click.Path(exists=True),
    default=None,
    help="Also check the source and re-draw the selection.",
)
@friendly_errors
def verify(folder: str, source: str | None) -> None:
    """Re-check the files of the split FOLDER against its manifest.json (exit status 1 on any mismatch).

    Example: reann-data verify water-split --source dataset_1593.xyz
    """
    from .split import verify_split

    problems = verify_split(folder, source)
    for problem in problems:
        click.echo(f"mismatch: {problem}")
    if problems:
        raise SystemExit(1)
    click.echo(f"{folder}: all files match manifest.json" + (" and the source" if source else ""))


@main.group()
def generate() -> None:
    """Generate new labelled structures (when no archive is at hand)."""


LABELER_OPTION = click.option(
    "--labeler",
    type=click.Choice(list(LABELERS)),
    default="gfn2-xtb",
    show_default=True,
    help="gfn2-xtb needs tblite (extra 'xtb'), pbe/cc-pvdz PySCF (extra 'pyscf'); emt: fast, unphysical.",
)


def run_generation(out: str, plan_options: dict[str, Any], workers: int, force: bool, quiet: bool) -> None:
    from .generate import Plan
    from .generate import generate as generate_frames

    report = generate_frames(
        out, Plan(**plan_options), workers=workers, force=force, progress=not quiet, echo=click.echo
    )
    click.echo(
        json.dumps(
            {"output": out, "written": report.written, "rejected": len(report.rejected)}, sort_keys=True
        )
    )


@generate.command("ch4")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--n", "count", type=int, required=True, help="Number of structures to generate and label.")
@click.option("--seed", type=int, required=True, help="Seed; structure i depends only on (seed, i).")
@LABELER_OPTION
@click.option(
    "--mode",
    type=click.Choice(["random", "perturbed"]),
    default="random",
    show_default=True,
    help="random: H uniform within 3 Å of C (Pozdnyakov et al. 2020); perturbed: equilibrium + noise.",
)
@click.option(
    "--sigma", type=float, default=0.15, show_default=True, help="Noise (Å per coordinate), perturbed mode."
)
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel labelling processes.")
@click.option("--force", is_flag=True, help="Overwrite OUT and its report.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly_errors
def generate_ch4(
    out: str,
    count: int,
    seed: int,
    labeler: str,
    mode: str,
    sigma: float,
    workers: int,
    force: bool,
    quiet: bool,
) -> None:
    """Generate COUNT labelled CH4 structures into the extxyz file OUT.

    Interrupted runs resume when the same command is run again (journal files OUT.partial*);
    failed calculations are skipped and listed in the report OUT with suffix .json.

    Example: reann-data generate ch4 --n 300 --seed 1 --labeler gfn2-xtb ch4.extxyz
    """
    plan = {"system": "ch4", "mode": mode, "n": count, "seed": seed, "labeler": labeler, "sigma": sigma}
    run_generation(out, plan, workers, force, quiet)


@generate.command("water")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--n", "count", type=int, required=True, help="Number of boxes to generate and label.")
@click.option("--seed", type=int, required=True, help="Seed; box i depends only on (seed, i).")
@LABELER_OPTION
@click.option("--molecules", type=int, default=8, show_default=True, help="Water molecules per cubic box.")
@click.option(
    "--density", type=float, default=1.0, show_default=True, help="Density in g/cm^3 (sets the box edge)."
)
@click.option(
    "--sigma", type=float, default=0.05, show_default=True, help="Noise (Å per coordinate) on every atom."
)
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel labelling processes.")
@click.option("--force", is_flag=True, help="Overwrite OUT and its report.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly_errors
def generate_water(
    out: str,
    count: int,
    seed: int,
    labeler: str,
    molecules: int,
    density: float,
    sigma: float,
    workers: int,
    force: bool,
    quiet: bool,
) -> None:
    """Generate COUNT labelled periodic water boxes (energy, forces, stress) into the extxyz file OUT.

    Molecules are placed at random (O-O at least 2.5 Å apart) with random orientations; use
    --labeler gfn2-xtb (periodic GFN2-xTB, about 1 s per 8-molecule box). Resumable like 'generate ch4'.

    Example: reann-data generate water --n 100 --seed 1 --molecules 8 water_gfn2.extxyz
    """
    plan = {
        "system": "water",
        "mode": "box",
        "n": count,
        "seed": seed,
        "labeler": labeler,
        "sigma": sigma,
        "molecules": molecules,
        "density": density,
    }
    run_generation(out, plan, workers, force, quiet)


@main.command("select")
@click.argument("candidates", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--committee", required=True, type=click.Path(dir_okay=False), help="Committee file (reann train)."
)
@click.option("--n", "count", type=click.IntRange(1), required=True, help="Structures to select and label.")
@click.option(
    "--split", "split_dir", required=True, type=click.Path(file_okay=False), help="Split folder to extend."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New split folder to write.")
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False),
    help="The simulated structure (atoms in i-PI's order): gives the elements of i-PI's active output, "
    "and every candidate must match it.",
)
@click.option(
    "--non-periodic", is_flag=True, help="i-PI files: a molecule in vacuum (i-PI's box is dropped)."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0),
    default=None,
    help="Only candidates whose committee energy spread exceeds this (eV).",
)
@click.option(
    "--pool-factor",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Farthest-point sampling among the N x this most uncertain candidates.",
)
@LABELER_OPTION
@click.option(
    "--into", type=click.Choice(["train", "val", "test"]), default="train", show_default=True, help="Split."
)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@friendly_errors
def select_frames(
    candidates: str,
    committee: str,
    count: int,
    split_dir: str,
    out: str,
    template: str | None,
    non_periodic: bool,
    threshold: float | None,
    pool_factor: int,
    labeler: str,
    into: str,
    force: bool,
) -> None:
    """Active learning: select the N most uncertain, mutually distinct structures of CANDIDATES, label
    them and write the split --out = --split plus these frames (the input split is not modified).

    CANDIDATES: i-PI's <ffcommittee> active_output (needs --template), an i-PI xyz trajectory, or any
    ase-readable file. Uncertainty: the committee's energy spread; distinctness: farthest-point
    sampling on the first member's embedded densities.

    \b
    Example:
      reann-data select ch4.active --template init.xyz --non-periodic --committee run/committee.pt \\
          --n 8 --labeler gfn2-xtb --split round0 --out round1
    """
    from ..data.labelers import make_labeler
    from ..data.split import append_to_split, sha256_of
    from ..data.trajectory import read_candidates
    from ..model import Committee, ModelFileError, load_model
    from ..train.active import label_frames, score_candidates
    from ..train.active import select as select_indices

    inputs = [path for path in (candidates, committee, template, split_dir) if path is not None]
    check_output(out, inputs, force=force, directory=True)  # before any labelling
    symbols = None
    if template is not None:
        import ase.io

        symbols = ase.io.read(template, index=0).get_chemical_symbols()  # type: ignore[union-attr]
    try:
        model = load_model(committee)
    except ModelFileError as error:
        raise DataError(str(error)) from None
    if not isinstance(model, Committee):
        raise DataError(f"{committee} is a single model; active learning needs a committee")
    frames = read_candidates(candidates, symbols, periodic=not non_periodic)
    scores = score_candidates(model, frames)
    chosen = select_indices(scores, count, threshold, pool_factor)
    above = int((scores.spread > threshold).sum()) if threshold is not None else len(frames)
    click.echo(
        f"{len(frames)} candidates, spread {scores.spread.min():.3g} to {scores.spread.max():.3g} eV"
        + (f", {above} above {threshold:g} eV" if threshold is not None else "")
        + f"; selected {len(chosen)}"
    )
    if not chosen:
        raise DataError("no candidate is above the threshold: nothing to label (the split is unchanged)")
    labelled = label_frames([frames[k] for k in chosen], make_labeler(labeler), echo=click.echo)
    provenance = {
        "candidates": {"name": Path(candidates).name, "sha256": sha256_of(candidates), "count": len(frames)},
        "committee": {"name": Path(committee).name, "sha256": sha256_of(committee)},
        "selection": {"n": count, "threshold_eV": threshold, "pool_factor": pool_factor},
        "candidate_indices": [int(atoms.info["candidate_index"]) for atoms in labelled],
        "spread_eV": [float(scores.spread[k]) for k in chosen],
        "labeler": make_labeler(labeler).description(),
    }
    manifest = append_to_split(split_dir, labelled, out, into=into, provenance=provenance, force=force)
    click.echo(
        f"wrote {out}: {len(labelled)} labelled frames appended to {into} "
        f"({manifest['splits'][into]['count']} frames), round {len(manifest['active_learning'])}"
    )
