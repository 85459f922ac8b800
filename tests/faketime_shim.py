"""Run at interpreter start in the test venv (a .pth file `make test` writes), and only under
libfaketime with the monotonic clock kept real (the Makefile sets FAKETIME_DONT_FAKE_MONOTONIC=1).

libfaketime 0.9.10 cannot move the clock by weeks under CPython 3.11 whichever way it is set:
- monotonic clock faked: CPython's timed waits (Event.wait, Lock.acquire(timeout=...)) use
  sem_clockwait, which libfaketime does not intercept, so a wait that must time out sleeps weeks;
- monotonic clock real: time.sleep's clock_nanosleep(TIMER_ABSTIME) is "adjusted" by the offset
  and fails with EINVAL.
So the Makefile keeps the monotonic clock real and this replaces time.sleep with relative waits
(select), which libfaketime leaves alone. Product code is untouched: it reads the moved wall clock
for every date, exactly as without libfaketime.
"""

import os

if "faketime" in os.environ.get("LD_PRELOAD", "") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
    import select
    import time

    _monotonic = time.monotonic

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        end = _monotonic() + seconds
        while (left := end - _monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep
