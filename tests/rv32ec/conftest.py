"""Fixtures of the RV32EC tests: the digits model compiled once per weight dtype (session scope), and
a skip when the cross toolchain is missing (make test installs it, so CI never skips)."""

import shutil

import pytest

from lbc.driver import compile_model

QUANTS = ["int8", "int4", "int2", "ternary", "pentary"]


def need_toolchain():
    missing = [t for t in ("riscv64-unknown-elf-gcc", "riscv64-unknown-elf-objdump") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt install gcc-riscv64-unknown-elf "
                    f"binutils-riscv64-unknown-elf; make test does this)")
    pytest.importorskip("unicorn", reason="pip install unicorn (make test does this)")


@pytest.fixture(scope="session")
def digits_rv32ec(tmp_path_factory, digits):
    """quant -> Compiled digits MLP for rv32ec (CH32V003 budgets), built lazily."""
    need_toolchain()
    cache = {}

    def get(quant, **options):
        key = (quant, tuple(sorted(options.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"rv32ec-{quant}") / "out"
            cache[key] = compile_model(digits["model"], out, "rv32ec", quant, digits["calib_path"],
                                       target_options=options)
        return cache[key]
    return get
