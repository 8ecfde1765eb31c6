"""lbc: a compiler from trained neural networks to firmware for very small machines."""

__version__ = "0.1.0"
