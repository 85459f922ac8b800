"""Peak resident memory of every process of a benchmark's stack, sampled while it runs: the
process itself, all its descendants (simulators, receiver, Dagster daemon, code server, run
workers) and the embedded PostgreSQL (which daemonizes, so it is found through its pid file)."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil


class RssSampler(threading.Thread):
    """Peak RSS per process (by pid and command) across this process's descendants and PostgreSQL."""

    def __init__(self, pgdata: Path, interval: float = 0.5):
        super().__init__(daemon=True, name="rss-sampler")
        self.pgdata = pgdata
        self.interval = interval
        self.peaks: dict[int, tuple[int, str]] = {}
        self._done = threading.Event()

    def processes(self) -> list[psutil.Process]:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        pid_file = self.pgdata / "postmaster.pid"
        try:
            master = psutil.Process(int(pid_file.read_text().split()[0]))
            procs += [master, *master.children()]
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return procs

    def run(self) -> None:
        while not self._done.is_set():
            for p in self.processes():
                try:
                    rss = p.memory_info().rss
                    if rss > self.peaks.get(p.pid, (0, ""))[0]:
                        self.peaks[p.pid] = (rss, " ".join(p.cmdline())[:120])
                except psutil.Error:
                    continue
            self._done.wait(self.interval)

    def stop(self) -> tuple[int, str]:
        self._done.set()
        if self.is_alive():
            self.join(10)
        return max(self.peaks.values(), default=(0, ""))
