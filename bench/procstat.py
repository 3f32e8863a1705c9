"""What a process costs, read from /proc: CPU seconds and peak RSS.

CPU = utime + stime of all threads (+ reaped children) from ``/proc/PID/stat``.
Peak RSS = ``VmHWM`` after ``echo 5 > /proc/PID/clear_refs`` reset it at the
start of the measurement, cross-checked by polling ``VmRSS`` every 20 ms.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_CLK = os.sysconf("SC_CLK_TCK")
_PF_KTHREAD = 0x00200000  # proc(5) flags, field 9
MiB = 1 << 20


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # [0] is field 3 of proc(5)


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime (fields 14-17)."""
    return sum(int(x) for x in _stat(pid)[11:15]) / _CLK


def cpu_split(pid: int) -> tuple[float, float, int]:
    """(user s, system s, minor page faults) including reaped children."""
    f = _stat(pid)
    user = (int(f[11]) + int(f[13])) / _CLK
    system = (int(f[12]) + int(f[14])) / _CLK
    return user, system, int(f[7]) + int(f[8])


def status_mib(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


@dataclass
class Usage:
    cpu_s: float
    user_s: float
    sys_s: float
    minflt: int
    peak_rss_mib: float
    rss_before_mib: float
    rss_after_mib: float


class Meter:
    """``with Meter(pid) as m: ...`` then ``m.usage``."""

    def __init__(self, pid: int, period: float = 0.02) -> None:
        self.pid = pid
        self.period = period
        self._stop = threading.Event()
        self._polled = 0.0
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._cpu0 = (0.0, 0.0, 0)
        self._rss0 = 0.0
        self._hwm_ok = False
        self.usage: Usage | None = None

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._polled = max(self._polled, status_mib(self.pid).get("VmRSS", 0.0))
            except OSError:
                return
            self._stop.wait(self.period)

    def __enter__(self) -> Meter:
        self._hwm_ok = reset_peak(self.pid)
        self._rss0 = status_mib(self.pid).get("VmRSS", 0.0)
        self._cpu0 = cpu_split(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        user, system, flt = (b - a for a, b in zip(self._cpu0, cpu_split(self.pid), strict=True))
        self._stop.set()
        self._thread.join()
        st = status_mib(self.pid)
        hwm = st.get("VmHWM", 0.0) if self._hwm_ok else 0.0
        self.usage = Usage(
            cpu_s=user + system,
            user_s=user,
            sys_s=system,
            minflt=int(flt),
            peak_rss_mib=max(hwm, self._polled),
            rss_before_mib=self._rss0,
            rss_after_mib=st.get("VmRSS", 0.0),
        )


def _kernel_threads_cpu() -> float:
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            f = _stat(int(entry.name))
        except (OSError, ValueError):
            continue
        if int(f[6]) & _PF_KTHREAD:
            total += int(f[11]) + int(f[12])
    return total / _CLK


def machine_busy_seconds() -> float:
    """CPU-seconds that user processes spent since boot, all CPUs: user + nice
    + system time, less kernel threads (writeback of what was just written,
    which is no other process's load); interrupts are not counted."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / _CLK - _kernel_threads_cpu()


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (up to ``max_wait`` s) until the machine is busy less than
    ``threshold`` CPU-seconds per second; return the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = machine_busy_seconds()
        time.sleep(0.5)
        busy = (machine_busy_seconds() - b0) / 0.5
        if busy < threshold or time.monotonic() >= deadline:
            return busy
