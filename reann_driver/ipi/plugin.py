"""i-PI PES plugin: a REANN model inside i-PI (``<ffdirect>``) or inside ``i-pi-py_driver``.

i-PI loads this file by path, so it uses absolute imports only. ``reann-driver --plugin-path`` prints
the path. Parameters (``<parameters>{model: m.pt, template: init.xyz}</parameters>`` or
``i-pi-py_driver -m custom -P PATH -o model=m.pt,template=init.xyz``):

- ``model``: model file or committee file, or several model files separated by spaces (a committee:
  the mean is returned and the per-member values go into the JSON extras that
  ``<ffcommittee parse_json="true">`` reads); ``template``: structure file giving the chemical symbols
  in i-PI's order;
- ``device`` (cpu | cuda | auto, default cpu), ``dtype`` (float64 | float32, default float64);
- ``non_periodic`` (default false): ignore the box (molecule in vacuum);
- ``extras`` (default false): per-atom energies (eV) as JSON extras;
- ``skin`` (default 0.2): neighbour-list skin in Å (see ``reann-driver --skin``);
- ``compile`` (default false): run the model through ``torch.compile`` (see ``reann-driver --compile``);
- ``pass_atoms`` (default: automatic): most atoms per forward pass (see ``reann-driver --pass-atoms``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ipi.pes.dummy import Dummy_driver

from reann_driver.ipi.evaluator import DEFAULT_SKIN, BatchEvaluator
from reann_driver.memory import keep_freed_memory

__DRIVER_NAME__ = "reann"
__DRIVER_CLASS__ = "REANNDriver"

Result = tuple[float, np.ndarray, np.ndarray, str]


class REANNDriver(Dummy_driver):
    """i-PI ``Dummy_driver`` contract: ``compute(cell, pos)`` for one structure or lists of structures.

    Inputs are i-PI's h (Bohr, lattice vectors as columns) and positions [n_atoms, 3] in Bohr; results
    are (energy in Hartree, forces [n_atoms, 3] in Hartree/Bohr, virial [3, 3] in Hartree, extras).
    A list of structures is evaluated in ONE model call (use ``<batch_size>`` in ``<ffdirect>``).
    """

    def __init__(
        self,
        model: str,
        template: str,
        device: str = "cpu",
        dtype: str = "float64",
        non_periodic: bool = False,
        extras: bool = False,
        skin: float = DEFAULT_SKIN,
        compile: bool = False,
        pass_atoms: int | str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.model_path = str(model)
        self.template_path = str(template)
        self.device = str(device)
        self.dtype = str(dtype)
        self.non_periodic = _boolean(non_periodic, "non_periodic")
        self.with_extras = _boolean(extras, "extras")
        self.skin = float(skin)
        self.compile = _boolean(compile, "compile")
        try:
            self.pass_atoms = None if pass_atoms is None else int(pass_atoms)
        except ValueError:
            raise ValueError(f"pass_atoms must be a whole number of atoms, got {pass_atoms!r}") from None
        super().__init__(*args, **kwargs)  # calls check_parameters

    def check_parameters(self) -> None:
        """Load the model and the template (clear errors for bad files)."""
        keep_freed_memory()  # see reann_driver.memory: large batches stop page-faulting every step
        self.evaluator = BatchEvaluator.from_files(
            model_files(self.model_path),
            self.template_path,
            periodic=not self.non_periodic,
            device=self.device,
            dtype=self.dtype,
            extras=self.with_extras,
            skin=self.skin,
            compile=self.compile,
            pass_atoms=self.pass_atoms,
        )

    def compute_structure(self, cell: np.ndarray, pos: np.ndarray) -> Result:
        return self._compute_batch([cell], [pos])[0]

    def compute(self, cell: Any, pos: Any) -> Any:
        if isinstance(cell, list):
            if not isinstance(pos, list) or len(cell) != len(pos):
                raise ValueError("batched evaluation needs lists of cells and positions of equal length")
            return self._compute_batch(cell, pos)
        return self.compute_structure(cell, pos)

    def _compute_batch(self, cells: list[np.ndarray], positions: list[np.ndarray]) -> list[Result]:
        results = self.evaluator.evaluate(
            np.stack([np.asarray(c, dtype=np.float64).reshape(3, 3) for c in cells]),
            np.stack([np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in positions]),
        )
        return [
            (float(results.energies[k]), results.forces[k], results.virials[k], results.extras[k])
            for k in range(len(cells))
        ]


def model_files(value: str) -> list[str]:
    """The ``model`` parameter as a list of files: one path (even with spaces) if it names a file, else
    the space-separated paths."""
    return [value] if Path(value).is_file() else value.split()


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ValueError(f"parameter {name} must be true or false, got {value!r}")
