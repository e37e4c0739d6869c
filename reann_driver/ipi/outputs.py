"""Readers for i-PI output files: the properties table and binary trajectories."""

from __future__ import annotations

import os
import re

import numpy as np

_COLUMN = re.compile(r"#\s*(?:column|cols\.)\s+(\d+)(?:\s*-\s*(\d+))?\s*-->\s*(\S+)")


def read_properties(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Columns of an i-PI ``<properties>`` file keyed by header name (``kinetic_cv{electronvolt}``, ...).

    Multi-column properties (``bead_potentials``) give 2D arrays [n_rows, n_columns]. Column numbers in
    the header are 1-based, as i-PI writes them.
    """
    columns: dict[str, tuple[int, int]] = {}
    rows: list[list[float]] = []
    with open(path) as stream:
        for line_number, line in enumerate(stream, start=1):
            if line.startswith("#"):
                match = _COLUMN.match(line)
                if match:
                    first = int(match.group(1))
                    last = int(match.group(2) or first)
                    columns[match.group(3)] = (first - 1, last)
                continue
            if not line.strip():
                continue
            try:
                rows.append([float(value) for value in line.split()])
            except ValueError:
                raise ValueError(f"{os.fspath(path)}, line {line_number}: not a row of numbers") from None
    if not columns:
        raise ValueError(f"{os.fspath(path)} has no i-PI '# column' header")
    width = max(stop for _, stop in columns.values())
    complete = [row for row in rows if len(row) >= width]  # a row being written may be incomplete
    table = np.array(complete, dtype=np.float64).reshape(-1, width)
    return {
        name: table[:, start] if stop - start == 1 else table[:, start:stop]
        for name, (start, stop) in columns.items()
    }


def read_binary_trajectory(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Frames of an i-PI trajectory written with ``format='bin'`` (full float64 precision).

    Returns (cells h [n_frames, 3, 3] with lattice vectors as columns, values [n_frames, n_atoms, 3]) in
    the units the trajectory was written in (atomic units unless the ``<trajectory>`` asked otherwise).
    i-PI writes per frame: h (9 f8), natoms (i8), values (3 natoms f8), len(names) (i8), the names
    ('|'-joined, UTF-32) and a title (UTF-32) whose length is the same for every frame of a file.
    """
    data = open(path, "rb").read()
    if not data:
        return np.zeros((0, 3, 3)), np.zeros((0, 0, 3))
    n_atoms = int(np.frombuffer(data, dtype=np.int64, count=1, offset=72)[0])
    names_offset = 80 + 24 * n_atoms
    n_name_chars = int(np.frombuffer(data, dtype=np.int64, count=1, offset=names_offset)[0])
    title_offset = names_offset + 8 + 4 * n_name_chars
    # the title runs up to the next frame, which starts with the same cell-independent atom count
    title = data[title_offset:].decode("utf-32-le", errors="replace")
    end = title.find("cell{")
    if end < 0:
        raise ValueError(f"{os.fspath(path)} does not look like an i-PI binary trajectory")
    title_chars = title.find("}", end) + 1
    frame_size = title_offset + 4 * title_chars
    if len(data) % frame_size:
        raise ValueError(
            f"{os.fspath(path)}: size {len(data)} is not a multiple of the frame size {frame_size}"
        )
    n_frames = len(data) // frame_size
    frames = np.frombuffer(data, dtype=np.uint8).reshape(n_frames, frame_size)
    cells = frames[:, :72].copy().view(np.float64).reshape(n_frames, 3, 3)
    values = frames[:, 80 : 80 + 24 * n_atoms].copy().view(np.float64).reshape(n_frames, n_atoms, 3)
    return cells, values
