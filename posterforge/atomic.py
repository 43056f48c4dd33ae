"""Files that appear whole or not at all, and the bookkeeping that lets runs share a folder.

- ``atomic_write``: write a temp file beside the target, fsync, rename. Used for weights,
  checkpoints, logs and sidecars. (Image outputs use ``images.encode_atomic``, built on the same
  temp files, whose permissions follow the umask.)
- Temp files are unique per write and carry their writer: ``.{name}.{pid}-{host}-{random}.tmp``.
  ``remove_stale`` deletes only those whose writer is provably gone (a dead pid on this host), or
  that nobody has touched for ``STALE_AFTER_S`` before the run began.
- ``claim``: a lock file per output (``.{name}.lock``, created with O_EXCL, holder inside), so that
  two runs on one folder share the work instead of both doing all of it. A dead holder's lock is
  taken over; a lock only ever saves work, correctness rests on the atomic rename.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# A live writer touches its temp file for the whole write (seconds): a file nobody has touched for
# this long before the run began is a leftover even when its writer cannot be asked (another host).
STALE_AFTER_S = 15 * 60
# A lock is written right after its O_EXCL create; one still empty after this long was cut short.
_EMPTY_LOCK_S = 5.0
_LOCK_MAGIC = b"posterforge-lock"

_TEMP_RE = re.compile(r"^\..+\.(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-)?[0-9a-f]{8}\.tmp$")


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a file object; on a clean exit its content replaces ``path`` atomically, on any
    exception (Ctrl-C included) the temp file is removed and ``path`` is left as it was. An OSError
    names ``path`` (not the temp file)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_temp(path, 0o666)  # the umask decides, as for any file a user makes
    except OSError as e:
        raise name_target(e, path) from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            name_target(e, path)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def probe_writable(directory: str | os.PathLike[str]) -> None:
    """Raise OSError (naming ``directory``) unless a file can be created in it, or, while it does
    not exist yet, in its nearest existing parent. Creates nothing that stays."""
    directory = Path(directory)
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    try:
        fd, tmp = create_temp(existing / ".posterforge-probe")
    except OSError as e:
        raise name_target(e, directory) from None
    os.close(fd)
    tmp.unlink(missing_ok=True)


def name_target(e: OSError, path: str | os.PathLike[str]) -> OSError:
    """Make ``e`` name the file the user asked for rather than our temp file (or nothing, as a
    failed ``write`` on a descriptor does): ``cannot write PATH: No space left on device``.
    An OSError without errno and strerror (raised by hand) keeps its message as it is."""
    if e.strerror is not None:
        e.filename, e.filename2 = str(path), None
    return e


_WRITE_ERRNOS = frozenset(
    getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG") if hasattr(errno, n)
)


def os_error_line(e: OSError) -> str:
    """``cannot write PATH: No space left on device``, ``PATH: Permission denied``, ..."""
    reason = e.strerror or str(e) or e.__class__.__name__
    if not e.filename:
        return reason
    what = f"cannot write {e.filename}" if e.errno in _WRITE_ERRNOS else str(e.filename)
    if e.filename2:
        what += f" -> {e.filename2}"
    return " ".join(f"{what}: {reason}".split())


def check_writable(out: Path) -> None:
    """One line, before any work, when ``out`` (a folder, made if need be) cannot be written."""
    from posterforge.errors import PosterforgeError

    try:
        probe_writable(out)
    except OSError as e:
        where = f"{e.filename}: " if e.filename and e.filename != str(out) else ""
        raise PosterforgeError(f"cannot write to {out}: {where}{e.strerror or e}") from None


# --- temp files -----------------------------------------------------------------------------------


def create_temp(target: Path, mode: int = 0o666) -> tuple[int, Path]:
    """Create and open a new temp file beside ``target``; its name is unique and names its writer.

    ``mode`` 0o666 honours the umask (mkstemp forces 0o600); O_EXCL makes the name ours.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = temp_path(target)
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file beside it", str(target))


def fsync_file(path: Path) -> None:
    """Make a file written by another library (FFmpeg) durable before it is renamed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(target: Path) -> Path:
    """``.{name}.{pid}-{host}-{8 hex}.tmp`` beside ``target``."""
    stem = target.name[:50]  # stay under NAME_MAX (255 bytes) even for multi-byte names
    return target.with_name(f".{stem}.{os.getpid()}-{_host()}-{secrets.token_hex(4)}.tmp")


def is_temp_name(path: str | os.PathLike[str]) -> bool:
    """True for our temp files (and the ``.{name}.{8 hex}.tmp`` ones of earlier versions)."""
    return _TEMP_RE.match(Path(path).name) is not None


def remove_stale(directory: str | os.PathLike[str], *, since: float | None = None) -> int:
    """Delete the temp and lock files in ``directory`` whose writer is provably gone: a dead
    process on this host, or untouched since ``STALE_AFTER_S`` before ``since`` (default: now).
    Files of live writers (this process included) are kept. Returns how many were removed."""
    cutoff = (time.time() if since is None else since) - STALE_AFTER_S
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not name.startswith("."):
            continue
        if (m := _TEMP_RE.match(name)) is not None:
            try:
                old = entry.stat(follow_symlinks=False).st_mtime < cutoff
            except OSError:
                continue
            dead = m["pid"] is not None and m["host"] == _host() and not _alive(int(m["pid"]))
            if (dead or old) and entry.is_file(follow_symlinks=False):
                with suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
        elif name.endswith(".lock"):
            with suppress(OSError):
                state, data = _lock_state(Path(entry.path), cutoff)
                if state == "stale" and _break(Path(entry.path), data):
                    removed += 1
    return removed


# --- per-output locks -----------------------------------------------------------------------------


@dataclass
class Claim:
    """This process's lock on one output; ``release`` after the output is written (or not)."""

    path: Path
    content: bytes

    def release(self) -> None:
        with suppress(OSError):
            if self.path.read_bytes() == self.content:
                self.path.unlink()


def lock_path(target: Path) -> Path:
    name = target.name
    if len(name.encode("utf-8", "surrogateescape")) > 200:
        digest = hashlib.blake2s(name.encode("utf-8", "surrogateescape"), digest_size=8)
        name = f"{name[:50]}.{digest.hexdigest()}"
    return target.with_name(f".{name}.lock")


def claim(target: Path) -> Claim | None:
    """Lock ``target`` for this process, or None while another live process holds it.

    Creates the target's folder. Raises OSError when the lock cannot be made (read-only folder,
    or a file in the way that is not one of our locks).
    """
    lock = lock_path(target)
    pid = os.getpid()
    start = _own_start(pid) or "-"
    nonce = secrets.token_hex(8)
    content = f"{_LOCK_MAGIC.decode()} {pid} {_host()} {start} {nonce}\n".encode()
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            state, data = _lock_state(lock, time.time() - STALE_AFTER_S)
            if state == "live":
                return None
            if state == "stale":
                _break(lock, data)
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
        except BaseException:
            lock.unlink(missing_ok=True)
            raise
        return Claim(lock, content)
    return None


def held_by_other(target: Path) -> bool:
    """Whether another live process holds the lock of ``target`` now."""
    try:
        state, data = _lock_state(lock_path(target), time.time() - STALE_AFTER_S)
    except OSError:
        return False
    mine = data.split()[1:3] == [str(os.getpid()).encode(), _host().encode()]
    return state == "live" and not mine


def _lock_state(lock: Path, cutoff: float) -> tuple[str, bytes]:
    """("gone" | "live" | "stale", content). Raises OSError for a file that is not our lock."""
    try:
        data = lock.read_bytes()
        mtime = lock.stat().st_mtime
    except FileNotFoundError:
        return "gone", b""
    if not data:
        return ("stale" if time.time() - mtime > _EMPTY_LOCK_S else "live"), data
    fields = data.split()
    if len(fields) != 5 or fields[0] != _LOCK_MAGIC or not fields[1].isdigit():
        raise FileExistsError(errno.EEXIST, "a file that is not a posterforge lock", str(lock))
    pid, host, start = int(fields[1]), *(f.decode("ascii", "replace") for f in fields[2:4])
    if host != _host():  # on another machine we cannot ask whether the holder runs: age tells
        live = mtime >= cutoff
    elif start == "-":  # no start time to tell a reused pid apart (no /proc): age tells too
        live = _alive(pid) and mtime >= cutoff
    else:
        live = _alive(pid, start)
    return ("live" if live else "stale"), data


def _break(lock: Path, seen: bytes) -> bool:
    """Remove a stale lock whose content was ``seen``, without removing a fresh one that another
    process may have put there meanwhile (the rename moves whichever is there; a fresh one goes
    back). Returns whether the stale lock was removed."""
    aside = temp_path(lock)  # named after us: a sweep removes it should we die right here
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return False
    try:
        moved = aside.read_bytes()
    except OSError:
        moved = seen
    if moved != seen:
        with suppress(OSError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)
    return moved == seen


# --- who we are, and whether a writer is alive ---------------------------------------------------


@functools.cache
def _host() -> str:
    """8 hex naming this host and pid namespace: pids are comparable only when it matches."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    seed = f"{socket.gethostname()}\0{ns}".encode("utf-8", "surrogateescape")
    return hashlib.blake2s(seed, digest_size=4).hexdigest()


def _proc_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, Linux), to tell a reused pid apart."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


@functools.cache
def _own_start(pid: int) -> str | None:  # keyed by pid: a forked child is another process
    return _proc_start(pid)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parens
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` of this host runs (and started at ``start`` when given)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return start is None or start == _own_start(pid)
    if os.name == "nt":  # os.kill(pid, 0) would signal it: assume alive, age decides
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # EPERM: it exists, under another user
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    return state not in ("Z", "X") and (start is None or start == started)
