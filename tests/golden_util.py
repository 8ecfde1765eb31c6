"""Golden generated sources: compare an output folder's files with the blessed copies under
tests/golden/. Re-bless deliberately with LBC_BLESS=1 (after reviewing the diff)."""

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
BLESS = os.environ.get("LBC_BLESS") == "1"


def check_golden(outdir, names, golden_dir):
    """Assert each named file in `outdir` equals its copy in tests/golden/<golden_dir> (write it with LBC_BLESS=1)."""
    for name in names:
        got = (Path(outdir) / name).read_text()
        ref = GOLDEN / golden_dir / name
        if BLESS:
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(got)
        assert ref.exists(), f"no golden {ref}; run with LBC_BLESS=1 to create it"
        assert got == ref.read_text(), f"{name} differs from {ref}; re-bless with LBC_BLESS=1 if intended"
