"""Progress on stderr: rich bars (one per file plus the total) when stderr
and stdout are terminals, else one plain line per second — stdout stays free
for the results."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from typing import Protocol, TextIO

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class FileProgress(Protocol):
    def set(self, completed: int) -> None:
        """The bytes of this file the server has (or is being sent)."""

    def advance(self, n: int) -> None: ...


class Reporter:
    """Counts bytes per file and in total; subclasses show them."""

    def __init__(self, total: int, files: int, stream: TextIO) -> None:
        self.stream = stream
        self.total = total
        self.files = files
        self.done_files = 0
        self.completed = 0
        self._per_file: dict[str, int] = {}

    def start_file(self, name: str, size: int) -> FileProgress:
        self._per_file[name] = 0
        return _Counter(self, name)

    def _set(self, name: str, completed: int) -> None:
        self.completed += completed - self._per_file.get(name, 0)
        self._per_file[name] = completed

    def file_done(self, name: str, line: str) -> None:
        self.done_files += 1
        self._per_file.pop(name, None)
        self.message(line)

    def message(self, line: str) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Reporter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class _Counter:
    def __init__(self, reporter: Reporter, name: str) -> None:
        self.reporter = reporter
        self.name = name
        self.completed = 0

    def set(self, completed: int) -> None:
        self.completed = completed
        self.reporter._set(self.name, completed)

    def advance(self, n: int) -> None:
        self.set(self.completed + n)


class BarReporter(Reporter):
    """rich progress bars: bytes, rate and ETA per file and for the total."""

    def __init__(self, total: int, files: int, stream: TextIO) -> None:
        super().__init__(total, files, stream)
        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("{task.description}", table_column=None),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=8,
            # stdout (the URLs) goes around the bars when it is this terminal
            redirect_stdout=_same_file(sys.stdout, stream),
            redirect_stderr=False,
        )
        self._total_task = self.progress.add_task(f"total ({files} files)", total=total)
        self._tasks: dict[str, TaskID] = {}

    def start_file(self, name: str, size: int) -> FileProgress:
        self._tasks[name] = self.progress.add_task(name, total=size)
        return super().start_file(name, size)

    def _set(self, name: str, completed: int) -> None:
        super()._set(name, completed)
        task = self._tasks.get(name)
        if task is not None:
            self.progress.update(task, completed=completed)
        self.progress.update(self._total_task, completed=self.completed)

    def file_done(self, name: str, line: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            self.progress.remove_task(task)
        super().file_done(name, line)

    def message(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    async def __aenter__(self) -> Reporter:
        self.progress.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.progress.refresh()
        self.progress.stop()


class LineReporter(Reporter):
    """One line per second: total bytes, percentage, rate over the last
    seconds, ETA and the files being sent; plus a line per finished file."""

    WINDOW = 5.0

    def __init__(self, total: int, files: int, stream: TextIO) -> None:
        super().__init__(total, files, stream)
        self._samples: deque[tuple[float, int]] = deque()
        self._ticker: asyncio.Task[None] | None = None

    def message(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def line(self) -> str:
        now = time.monotonic()
        self._samples.append((now, self.completed))
        while now - self._samples[0][0] > self.WINDOW:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        rate = (self.completed - b0) / (now - t0) if now > t0 else 0.0
        pct = 100.0 * self.completed / self.total if self.total else 100.0
        eta = f"{(self.total - self.completed) / rate:.0f}s" if rate > 0 else "?"
        active = ", ".join(sorted(self._per_file)) or "-"
        return (
            f"{self.done_files}/{self.files} files {decimal(self.completed)}/{decimal(self.total)}"
            f" {pct:.1f}% {decimal(int(rate))}/s ETA {eta} [{active}]"
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.message(self.line())

    async def __aenter__(self) -> Reporter:
        self._samples.append((time.monotonic(), 0))
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self.message(self.line())  # the log ends with the totals


class QuietReporter(Reporter):
    """No progress; what happened (retries, fallbacks, finished files) is still said."""

    def message(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


def _same_file(a: TextIO, b: TextIO) -> bool:
    try:
        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError):  # no file descriptor (a test's StringIO), closed
        return False


def reporter(mode: str, total: int, files: int, stream: TextIO = sys.stderr) -> Reporter:
    """``mode``: ``auto``, ``bars``, ``lines``, ``none``. ``auto`` draws bars
    on ``stream`` (stderr) only when both it and stdout are terminals: when
    stdout goes to a pipe or a file (a script reads the results) or stderr
    to a log, progress is one plain line per second."""
    if mode == "auto":
        bars = _is_terminal(stream) and _is_terminal(sys.stdout)
        mode = "bars" if bars else "lines"
    kinds: dict[str, type[Reporter]] = {
        "bars": BarReporter,
        "lines": LineReporter,
        "none": QuietReporter,
    }
    return kinds[mode](total, files, stream)
