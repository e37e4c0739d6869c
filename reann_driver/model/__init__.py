"""The REANN model: embedded densities, recursive coefficient updates, energy networks, committees,
model files."""

from .committee import Committee
from .files import ModelFileError, save_committee, save_model
from .loading import load_committee, load_model
from .neighbors import (
    Graph,
    build_graph,
    concatenate_graphs,
    graph_from_atoms,
    neighbor_pairs,
    species_indices,
)
from .reann import REANN

__all__ = [
    "REANN",
    "Committee",
    "Graph",
    "ModelFileError",
    "build_graph",
    "concatenate_graphs",
    "graph_from_atoms",
    "load_committee",
    "load_model",
    "neighbor_pairs",
    "save_committee",
    "save_model",
    "species_indices",
]
