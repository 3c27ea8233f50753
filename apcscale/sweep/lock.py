"""The sweep directory's lock: one driver at a time per sweep.

    <output_dir>/.<name>.lock      next to <output_dir>/<name>/, so --overwrite can delete the sweep
                                   directory without deleting the lock that guards it

The driver takes the lock before it looks at, prepares, deletes or writes anything of its
sweep, and holds it for its lifetime: an exclusive `fcntl.flock` on an open file, which the
kernel releases when the process ends however it ends (kill -9 included), so a lock is never
left behind held. Inside the file the driver writes its pid, host and start time, for the
message a second driver gets: a second start, `--resume` or `--overwrite` of a live sweep
fails at once with

    <sweep dir> is in use by the sweep driver pid 4242 on host node-1, started 2025-01-01 12:00:00 ...

A lock file whose process is gone (its flock released) is taken over, with a message naming the
previous holder. Checking that the directory is free and taking the lock are one step (flock
with LOCK_NB on the one file), so two drivers started together cannot both pass the check.

flock works across the hosts of an NFS v4 mount (Linux emulates it with byte-range locks). On a
filesystem without locks, taking the lock fails with a clear error rather than going unguarded.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any


class SweepLockError(RuntimeError):
    """The sweep directory is in use by a live driver, or its lock cannot be taken."""


def lock_path(sweep_dir: str | Path) -> Path:
    sweep_dir = Path(sweep_dir)
    return sweep_dir.parent / f".{sweep_dir.name}.lock"


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it wrote no details)"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"the sweep driver pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


def _read_holder(fh) -> dict[str, Any]:
    fh.seek(0)
    text = fh.read()
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class SweepLock:
    """Exclusive lock on a sweep directory, held from `acquire()` until `release()`, until the object
    is garbage-collected (keep a reference), or until the process ends.

        with SweepLock(sweep_dir) as lock:   # raises SweepLockError naming the live holder
            print(lock.took_over)            # the previous holder's details, if its lock was stale
    """

    def __init__(self, sweep_dir: str | Path):
        self.sweep_dir = Path(sweep_dir)
        self.path = lock_path(self.sweep_dir)
        self._fh = None
        self.took_over: dict[str, Any] | None = None

    def acquire(self, command: str = "") -> SweepLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")
        except OSError as exc:
            raise SweepLockError(
                f"cannot write to the output directory {self.path.parent}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fh)
            fh.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SweepLockError(
                    f"{self.sweep_dir} is in use by {_describe(holder)}; wait for it to end or stop it (Ctrl-C "
                    f"leaves it resumable), or choose another --output / name (lock: {self.path})"
                ) from None
            raise SweepLockError(
                f"cannot lock {self.path}: {exc.strerror or exc} (a filesystem without file locks?)"
            ) from None
        previous = _read_holder(fh)
        self.took_over = previous or None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": command}
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(info) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
        self._fh = fh
        return self

    def release(self) -> None:
        """Clear the holder's details and unlock (the file stays: deleting it would let a driver
        that opened it just before lock a file no newer driver sees)."""
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
        except OSError:
            pass
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def stale_message(self) -> str | None:
        """What to tell the user when the lock was taken over from a holder that is gone."""
        if not self.took_over:
            return None
        return (
            f"taking over the lock of {self.sweep_dir.name} from {_describe(self.took_over)}, which is gone "
            "(it ended without releasing it: killed, or its machine went down)"
        )

    def __enter__(self) -> SweepLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The details of the live driver holding the sweep's lock, or None when nobody holds it."""
    path = lock_path(sweep_dir)
    try:
        fh = open(path)
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_holder(fh) or {"pid": None}
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


__all__ = ["SweepLock", "SweepLockError", "lock_path", "holder"]
