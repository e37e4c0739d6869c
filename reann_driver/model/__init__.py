"""The REANN model: embedded densities, recursive coefficient updates, energy networks, model files."""

from .files import ModelFileError, save_model
from .neighbors import (
    Graph,
    build_graph,
    concatenate_graphs,
    graph_from_atoms,
    neighbor_pairs,
    species_indices,
)
from .reann import REANN, load_model

__all__ = [
    "REANN",
    "Graph",
    "ModelFileError",
    "build_graph",
    "concatenate_graphs",
    "graph_from_atoms",
    "load_model",
    "neighbor_pairs",
    "save_model",
    "species_indices",
]
