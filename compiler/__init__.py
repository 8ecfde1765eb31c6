"""lbc: a compiler from trained neural networks to firmware for very small machines."""

__version__ = "0.1.0"


def __getattr__(name):
    # lbc.compile and lbc.Artifact load the driver on first use, so `import lbc` stays light
    # (no numpy-heavy imports, never torch or keras).
    if name in ("compile", "Artifact"):
        from lbc import api
        return getattr(api, name)
    raise AttributeError(f"module 'lbc' has no attribute {name!r}")
