"""Launchers for real servers on loopback, used by the tests and benchmarks.

Each launcher is a `ServerBase` subclass (`swift.SwiftServer`,
`moto.MotoServer`, `redis.RedisServer`):

* constructing one starts nothing; `start()`, `with server:` or reading an
  endpoint attribute starts it (lazily, once);
* `stop()` / `kill()` stop the processes (SIGTERM / SIGKILL, by the PIDs
  the launcher started) but keep ports and data, so a later `start()` (or
  `restart()`) brings the server back on the same ports;
* `pause()` / `resume()` freeze and thaw it (SIGSTOP / SIGCONT) to simulate
  a hung backend;
* `close()` (also on `with` exit and at interpreter exit) stops it and
  removes its temporary directory.

`python -m testservers.<name>` starts one, prints its endpoints as JSON
and waits until interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .ports import ServerStartError, log_tail

__all__ = ["ServerBase", "ServerStartError", "serve_main"]

_S = TypeVar("_S", bound="ServerBase")


class ServerBase:
    """Common lifecycle of a launcher: lazy start, stop/restart, cleanup."""

    name = "server"

    def __init__(
        self, *, base_dir: str | Path | None = None, startup_timeout: float = 60.0
    ) -> None:
        self.startup_timeout = startup_timeout
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self._dir: Path | None = None
        self._own_dir = False
        self._procs: list[subprocess.Popen[bytes]] = []
        self._prepared = False  # ports chosen, files written
        self._started_once = False
        self._closed = False
        self._lock = threading.RLock()

    # -- to implement -----------------------------------------------------

    def _prepare(self) -> None:
        """Choose ports and write config files (called again on a retried first start)."""
        raise NotImplementedError

    def _launch(self) -> None:
        """Spawn the processes (with `self._spawn`) and wait until they answer."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Endpoints and credentials, JSON-serialisable."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------

    @property
    def directory(self) -> Path:
        """Working directory (configs, data, logs); removed by close() if created here."""
        if self._dir is None:
            if self._base_dir is not None:
                self._base_dir.mkdir(parents=True, exist_ok=True)
                self._dir = self._base_dir
            else:
                self._dir = Path(tempfile.mkdtemp(prefix=f"ugw-{self.name}-"))
                self._own_dir = True
        return self._dir

    @property
    def log_dir(self) -> Path:
        d = self.directory / "log"
        d.mkdir(exist_ok=True)
        return d

    def start(self: _S) -> _S:
        """Start if not running (same ports and data as before if it ran already)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: start() after close()")
            if self.running:
                return self
            self._stop_procs(signal.SIGKILL)  # leftovers of a partial crash
            atexit.unregister(self.close)  # register once
            atexit.register(self.close)
            first = not self._started_once
            for attempt in (1, 2):
                try:
                    if not self._prepared:
                        self._prepare()
                        self._prepared = True
                    self._launch()
                    break
                except ServerStartError as e:
                    logs = self._log_tails()
                    self._stop_procs(signal.SIGKILL)
                    if attempt == 2:
                        raise ServerStartError(
                            f"{self.name}: start failed twice: {e}\n{logs}"
                        ) from e
                    if first:
                        self._prepared = False  # new ports on the retry
            self._started_once = True
            return self

    def _ensure_started(self) -> None:
        """Lazy start on first use; does not undo an explicit stop()."""
        if not self._started_once:
            self.start()

    @property
    def running(self) -> bool:
        """True if all processes of the server are alive."""
        return bool(self._procs) and all(p.poll() is None for p in self._procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the processes gracefully (SIGTERM, SIGKILL after `timeout`); keep data and ports."""
        with self._lock:
            self._stop_procs(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash the server (SIGKILL); `start()` brings it back."""
        with self._lock:
            self._stop_procs(signal.SIGKILL)

    def restart(self: _S) -> _S:
        """stop() then start() on the same ports and data."""
        with self._lock:
            self.stop()
            return self.start()

    def pause(self) -> None:
        """Freeze the processes (SIGSTOP): connections hang instead of failing."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw the processes after pause()."""
        self._signal_all(signal.SIGCONT)

    def close(self) -> None:
        """Stop and remove the temporary directory. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_procs(signal.SIGTERM, 5.0)
            atexit.unregister(self.close)
            if self._own_dir and self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort; close() is the normal way.
        for p in getattr(self, "_procs", []):
            if p.poll() is None:
                _signal_group(p, signal.SIGKILL)

    # -- process helpers --------------------------------------------------

    def _spawn(
        self,
        argv: Sequence[str],
        log_name: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a child in its own process group, output appended to log/<log_name>.log."""
        log_path = self.log_dir / f"{log_name}.log"
        with open(log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd or self.directory,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def _signal_all(self, sig: signal.Signals) -> None:
        for p in self._procs:
            if p.poll() is None:
                _signal_group(p, sig)

    def _stop_procs(self, sig: signal.Signals, timeout: float = 10.0) -> None:
        procs, self._procs = self._procs, []
        for p in procs:
            if p.poll() is None:
                _signal_group(p, sig)
                _signal_group(p, signal.SIGCONT)  # in case it was paused
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()

    def _log_tails(self) -> str:
        if self._dir is None or not (self._dir / "log").is_dir():
            return ""
        parts = [
            f"--- {f.name}\n{log_tail(f, 15)}" for f in sorted((self._dir / "log").glob("*.log"))
        ]
        return "\n".join(parts)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group led by our child (its pgid is its PID)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def serve_main(server: ServerBase) -> None:
    """`python -m` mode: start, print the endpoints as JSON, wait for Ctrl-C / SIGTERM."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    t0 = time.monotonic()
    with server:
        info = dict(server.info(), pids=server.pids, start_seconds=round(time.monotonic() - t0, 2))
        print(json.dumps(info, indent=2), flush=True)
        try:
            while server.running:
                time.sleep(1.0)
            print(f"{server.name}: a process exited; see {server.log_dir}", flush=True)
        except KeyboardInterrupt:
            pass
