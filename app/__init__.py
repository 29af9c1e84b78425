"""tila: occupancy of a shared workspace, live and over time."""

__version__ = "0.1.0"
