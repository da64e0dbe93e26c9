"""Figures of stored results: sweeps and spectra (:mod:`.figures`), grids (:mod:`.grid`)."""

from .figures import (
                      block_density_figure,
                      default_normalize,
                      density_figure,
                      plot_block_density,
                      plot_density,
                      plot_spectrum,
                      plot_sweep,
                      spectrum_figure,
                      sweep_figure,
)
from .grid import grid_figure, plot_grid
from .style import COLOURS, DPI, FIGSIZE, save_figure
from .training import plot_training, training_figure

__all__ = ["plot_sweep", "sweep_figure", "plot_spectrum", "spectrum_figure", "default_normalize", "grid_figure",
           "plot_grid", "plot_density", "density_figure", "plot_block_density", "block_density_figure",
           "plot_training", "training_figure", "save_figure", "COLOURS", "DPI", "FIGSIZE"]
