"""Figures of stored results: sweeps and spectra (:mod:`.figures`), grids (:mod:`.grid`).

Internal: the stable API is ``hessrank.*``; names here may change between versions."""

from .figures import plot_block_density, plot_density, plot_spectrum, plot_sweep, spectrum_figure, sweep_figure
from .grid import grid_figure, plot_grid
from .style import COLOURS, DPI, FIGSIZE
from .training import plot_training

__all__ = [
    "plot_sweep", "sweep_figure", "plot_spectrum", "spectrum_figure", "grid_figure", "plot_grid",
    "plot_density", "plot_block_density", "plot_training", "COLOURS", "DPI", "FIGSIZE",
]
