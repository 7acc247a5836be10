"""The one rule for every path chainrule reads or writes, and the memory budget.

Reading: :func:`open_regular` opens with ``O_NONBLOCK`` (so a FIFO with no writer cannot
hang the open), then ``fstat`` on the descriptor it got (so what is checked is what is
read) and accepts regular files only. :func:`read_bytes` reads with a byte budget and
never trusts ``st_size`` (0 for /dev/zero, a FIFO, /proc files).

Writing: :func:`check_writable` accepts a path where nothing is, or a regular file (a
symlink is followed to its target, which must itself be nothing or a regular file); it
never replaces a device, FIFO, socket or directory. :func:`atomic_write` writes a
temporary file in the target's folder, fsyncs it and renames it over the target, so a
failure leaves the old file untouched. Every ``OSError`` becomes one line naming the path
and the cause.

Memory: :func:`memory_budget` is the number of bytes a loader may allocate, from
``max_memory``, else $CHAINRULE_MAX_MEMORY, else half of the memory the kernel reports
available. :func:`check_budget` refuses an allocation, with the figure, before it happens.

This module imports nothing of chainrule, so every layer may use it. The caller passes the
exception class its users expect (DataError, ModelFileError); the default is
:class:`FileRuleError`, a ValueError.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO

__all__ = ["FileRuleError", "open_regular", "read_bytes", "check_writable", "atomic_write",
           "same_file", "memory_budget", "check_budget", "parse_size", "format_bytes",
           "MEMORY_FRACTION"]

MEMORY_FRACTION = 0.5
_CHUNK = 1 << 20


class FileRuleError(ValueError):
    """A path that breaks the read or write rule, or an allocation over the budget."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _cause(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop?)"
    if exc.errno == errno.ENXIO:
        return "no such device or address (a socket or a device with nothing behind it)"
    return exc.strerror or " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- reading


def open_regular(path: str | os.PathLike[str], what: str = "file",
                 error: type[Exception] = FileRuleError) -> IO[bytes]:
    """Open ``path`` for binary reading if, and only if, it is a regular file."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{name}: file not found") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO opened for writing)
            raise error(f"{name}: is a socket or device, not a regular {what}") from None
        raise error(f"{name}: cannot open it ({_cause(exc)})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name}: is {_kind(st.st_mode)}, expected a regular {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], limit: int, what: str = "file",
               error: type[Exception] = FileRuleError) -> bytes:
    """The bytes of the regular file ``path``, refusing it once it holds more than
    ``limit`` bytes (counted as read: ``st_size`` is only a shortcut to refuse early)."""
    name = os.fspath(path)
    with open_regular(path, what, error) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise error(f"{name}: {format_bytes(size)} is above the {format_bytes(limit)} "
                        f"limit for a {what}")
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise error(f"{name}: cannot read it ({_cause(exc)})") from None
    if len(data) > limit:
        raise error(f"{name}: more than the {format_bytes(limit)} limit for a {what}")
    return data


# --------------------------------------------------------------------------- writing


def check_writable(path: str | os.PathLike[str], what: str = "file",
                   error: type[Exception] = FileRuleError) -> Path:
    """The real path that writing ``path`` would replace; refuse, before any work, a
    path that is (or is a symlink to) anything but nothing or a regular file, or whose
    folder does not exist."""
    name = os.fspath(path)
    if name == "":
        raise error("an empty output path; give a file name")
    p = Path(name)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise error(f"{name}: cannot write there ({_cause(exc)})") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            real = Path(os.path.realpath(p, strict=True))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise error(f"{name}: is a symbolic link to {os.readlink(p)!r}, which does "
                            f"not exist; refusing to follow it") from None
            raise error(f"{name}: cannot follow the symbolic link ({_cause(exc)})") from None
        tst = os.stat(real)
        if not stat.S_ISREG(tst.st_mode):
            raise error(f"{name}: is a symbolic link to {real}, which is {_kind(tst.st_mode)};"
                        f" chainrule writes only regular files")
        return real
    if st is not None and not stat.S_ISREG(st.st_mode):
        hint = "; give a file name inside it" if stat.S_ISDIR(st.st_mode) else \
            "; chainrule replaces only regular files"
        raise error(f"{name}: is {_kind(st.st_mode)}{hint}")
    folder = p.parent
    try:
        fst = os.stat(folder)
    except FileNotFoundError:
        raise error(f"{name}: the folder {folder} does not exist; create it first") from None
    except OSError as exc:
        raise error(f"{name}: cannot write there ({_cause(exc)})") from None
    if not stat.S_ISDIR(fst.st_mode):
        raise error(f"{name}: {folder} is not a folder")
    return p


def atomic_write(path: str | os.PathLike[str], data: bytes, what: str = "file",
                 error: type[Exception] = FileRuleError) -> Path:
    """Write ``data`` whole or not at all to ``path`` (checked by :func:`check_writable`):
    a temporary file in the same folder, fsync, rename, fsync of the folder. On any
    failure the temporary file is removed and what was at ``path`` is untouched."""
    name = os.fspath(path)
    target = check_writable(path, what, error)
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".tmp",
                                   dir=folder)
    except OSError as exc:
        raise error(f"{name}: cannot write it ({_cause(exc)})") from None
    try:
        try:
            os.fchmod(fd, _mode_for(target))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            check_writable(target, what, error)  # nothing swapped in meanwhile
            os.replace(tmp, target)
        except OSError as exc:
            raise error(f"{name}: cannot write it ({_cause(exc)}); nothing was changed"
                        ) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - folders that cannot be fsynced
        pass
    return Path(name)


def _mode_for(path: Path) -> int:
    """The permissions an ordinary new file would get (or the existing file's)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def same_file(a: str | os.PathLike[str] | None, b: str | os.PathLike[str] | None) -> bool:
    """Whether two paths name the same file (through links, or by the same real path when
    one does not exist yet)."""
    if a is None or b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- memory

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5GiB"``, ``"1000000"`` -> bytes (powers of 1024)."""
    m = _SIZE.match(str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a size; write it as 512M, 2G or a number of bytes")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"{text!r}: the size must be at least one byte")
    return value


def format_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n):,} bytes"


def _available() -> int:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f.read(1 << 16).splitlines():
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 4 << 30


def memory_budget(max_memory: int | str | None = None) -> int:
    """Bytes a loader may allocate: ``max_memory``, else $CHAINRULE_MAX_MEMORY, else
    :data:`MEMORY_FRACTION` of the memory available now."""
    if max_memory is None:
        max_memory = os.environ.get("CHAINRULE_MAX_MEMORY") or None
    if max_memory is None:
        return max(int(_available() * MEMORY_FRACTION), 64 << 20)
    if isinstance(max_memory, str):
        return parse_size(max_memory)
    if isinstance(max_memory, bool) or not isinstance(max_memory, int) or max_memory < 1:
        raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
    return max_memory


def check_budget(need: int, max_memory: int | str | None, what: str,
                 error: type[Exception] = FileRuleError) -> None:
    """Refuse, before allocating, ``need`` bytes beyond the budget."""
    budget = memory_budget(max_memory)
    if need > budget:
        raise error(f"{what} needs {format_bytes(need)} of memory, above the budget of "
                    f"{format_bytes(budget)} (--max-memory, or $CHAINRULE_MAX_MEMORY, raises "
                    f"it)")
