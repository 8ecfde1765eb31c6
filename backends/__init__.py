"""Backends: one package per target. `get_target(name)` returns a Target instance."""

import importlib
import inspect

from lbc.errors import LbcError

TARGETS = {
    "host": "lbc.backends.host.target:HostTarget",
    "rv32ec": "lbc.backends.rv32ec.target:Rv32ecTarget",
    "nes": "lbc.backends.nes.target:NesTarget",
    "pentary": "lbc.backends.pentary.target:PentaryTarget",
}


def available_targets():
    """Names of the targets whose backend is present in this installation."""
    out = []
    for name, spec in TARGETS.items():
        mod = spec.split(":")[0]
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        out.append(name)
    return out


def get_target(name, **options):
    names = available_targets()
    if name not in names:
        raise LbcError(f"unknown target {name!r}; valid targets: {', '.join(names)}")
    mod, cls = TARGETS[name].split(":")
    target_cls = getattr(importlib.import_module(mod), cls)
    try:
        inspect.signature(target_cls).bind(**options)
    except TypeError:
        takes = [p for p in inspect.signature(target_cls).parameters if p not in ("args", "kwargs")]
        raise LbcError(f"target {name} does not take the option(s) {', '.join(sorted(options))}; "
                       f"it takes: {', '.join(takes) or 'none'}") from None
    return target_cls(**options)
