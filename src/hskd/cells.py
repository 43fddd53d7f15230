"""The cell grammar's public names at their first import path; they live in `hskd.planning.cells`."""

from hskd.planning.cells import Cell, Depth, Length, Width, expand_joint, layer_map, parse_cell, top_layers
from hskd.planning.strategies import static_dims

__all__ = ["Cell", "Depth", "Length", "Width", "expand_joint", "layer_map", "parse_cell", "static_dims", "top_layers"]
