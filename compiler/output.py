"""Where lbc writes: the output-folder rule and single output files.

The rule (it never loses a user's file):

* lbc writes into a folder it creates, an empty folder, or a folder that holds an lbc manifest
  (`lbc.json`, i.e. an earlier `lbc compile` made it). Any other existing folder is refused unless
  `force` is given; then lbc's files are added to it (files of the same names are replaced) and
  nothing else is touched. An existing path that is not a folder is always refused.
* Everything is staged in a hidden `.lbc-tmp-*` folder inside the output folder and moved into place
  only when the whole compile succeeded; on any failure (also Ctrl-C and SIGTERM, which the CLI turns
  into KeyboardInterrupt) the staging folder, and the output folder itself when lbc created it, are
  removed. Replacing an lbc folder's old contents never removes the files the compile reads (a model
  or calibration file kept inside the folder).
* Files and folders get the user's umask (not the 0700/0600 of mkdtemp/mkstemp).
* A single output file (`lbc asm -o`, `lbc run --output`) is written atomically via a temporary
  file beside it, unless the path exists and is not a regular file (/dev/null, a FIFO): that is
  opened and written to, never replaced.
"""

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from lbc.errors import LbcError

MANIFEST = "lbc.json"
STAGING = ".lbc-tmp-"
TRASH = ".lbc-old-"


def umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _apply_umask(path, is_dir):
    os.chmod(path, (0o777 if is_dir else 0o666) & ~umask())


def _why(e):
    return e.strerror or str(e)


def _lbc_leftover(name):
    return name.startswith((STAGING, TRASH))


def _classify(out, force):
    """'new' (does not exist), 'lbc' (lbc's or empty: its old contents are replaced) or 'force'."""
    if not os.path.lexists(out):
        return "new"
    if not out.is_dir():
        raise LbcError(f"output {out} exists and is not a folder; choose another -o")
    try:
        entries = [e for e in os.listdir(out) if not _lbc_leftover(e)]
    except OSError as e:
        raise LbcError(f"cannot read output folder {out}: {_why(e)}") from None
    if not entries or (out / MANIFEST).is_file():
        return "lbc"
    if force:
        return "force"
    shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise LbcError(f"output folder {out} holds files lbc did not write ({shown}); choose a new or empty "
                   f"folder, or pass --force to add lbc's files to it (files of the same names are replaced)")


def _make_folder(out):
    """Create `out` and missing parents; returns the topmost folder created (removed on failure)."""
    missing = []
    p = out
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise LbcError(f"cannot create output folder {out}: {p} is not a folder")
    try:
        out.mkdir(parents=True)
    except OSError as e:
        raise LbcError(f"cannot create output folder {out}: {_why(e)}") from None
    return missing[-1]


@contextmanager
def output_folder(out, force=False, keep=()):
    """Stage an output folder: yields a fresh empty folder to write into; on normal exit its contents
    become `out`'s, on any exception nothing is left. `keep`: paths the compile reads (never removed)."""
    out = Path(os.path.abspath(out))
    mode = _classify(out, force)
    created = _make_folder(out) if mode == "new" else None
    try:
        try:
            for e in os.listdir(out):  # a killed earlier run's staging folders
                if _lbc_leftover(e):
                    shutil.rmtree(out / e, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=STAGING, dir=out))
        except OSError as e:
            raise LbcError(f"cannot write into output folder {out}: {_why(e)}") from None
        try:
            _apply_umask(tmp, True)
            yield tmp
            _commit(out, tmp, mode, keep)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _commit(out, tmp, mode, keep):
    keep = {Path(os.path.abspath(k)) for k in keep}
    kept = {e for e in os.listdir(out) if any(k == out / e or out / e in k.parents for k in keep)}
    new = sorted(os.listdir(tmp))
    if clash := sorted(kept & set(new)):
        raise LbcError(f"output folder {out}: lbc would replace {', '.join(clash)}, which this compile reads; "
                       f"choose another -o")
    if mode == "lbc":
        old = [e for e in os.listdir(out) if e not in kept and not _lbc_leftover(e)]
    else:
        old = [e for e in new if os.path.lexists(out / e)]
    trash = Path(tempfile.mkdtemp(prefix=TRASH, dir=out))
    try:
        for e in old:
            os.replace(out / e, trash / e)
        for e in new:
            os.replace(tmp / e, out / e)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def write_file(path, data):
    """Write bytes to `path`: in place for a device or FIFO, else atomically with the user's umask."""
    path = os.path.realpath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise LbcError(f"cannot write {path}: {_why(e)}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise LbcError(f"cannot write {path}: it is a folder; give a file name")
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(path, "wb") as f:
                f.write(data)
            return path
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            raise LbcError(f"cannot write {path}: folder {folder} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=STAGING, dir=folder)
    except OSError as e:
        raise LbcError(f"cannot write {path}: {_why(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        else:
            _apply_umask(tmp, False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------------------------ checksums

CHECKSUMS = "lbc.sha256"


def write_checksums(folder):
    """Record the SHA-256 of every file lbc wrote (the `sha256sum` format, so `sha256sum -c lbc.sha256`
    works too); `lbc run` checks them before it trusts a build folder."""
    import hashlib
    folder = Path(folder)
    lines = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != CHECKSUMS:
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n")
    (folder / CHECKSUMS).write_text("".join(lines))


def check_checksums(folder):
    """Raise LbcError naming the first file of a build folder that changed since lbc wrote it."""
    import hashlib
    folder = Path(folder)
    path = folder / CHECKSUMS
    try:
        entries = [line.split("  ", 1) for line in path.read_text().splitlines()]
        entries = [(h, name) for h, name in entries if len(h) == 64]
    except (OSError, UnicodeDecodeError, ValueError):
        entries = None
    if not entries:
        raise LbcError(f"{folder} is damaged: {CHECKSUMS} is missing or unreadable; re-run lbc compile")
    for digest, name in entries:
        p = folder / name
        if ".." in Path(name).parts or not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            raise LbcError(f"{folder} is damaged: {name} is missing or changed since lbc compile wrote it; "
                           f"re-run lbc compile")
