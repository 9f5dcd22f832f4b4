"""One atheris (libFuzzer) process for one target; started by ``python -m fuzz`` through a small
executable script (libFuzzer re-executes argv[0] for -merge), never by hand.

Environment: FUZZ_TARGET, FUZZ_ARGV0 (that script), FUZZ_STATS (a JSON file kept up to date: inputs
run, slowest input), FUZZ_MAX_MS (CPU time one input may take), FUZZ_RUNS (the -runs value).
The arguments are libFuzzer's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import atheris

from fuzz import SETTINGS


class SlowInput(Exception):
    """One input took longer than the bound (a hang, or a complexity blow-up)."""


def main() -> None:
    name = os.environ["FUZZ_TARGET"]
    stats_path = Path(os.environ["FUZZ_STATS"])
    limit = float(os.environ.get("FUZZ_MAX_MS", "1000")) / 1000
    runs = int(os.environ.get("FUZZ_RUNS", "-1"))
    include = SETTINGS[name][1] if name in SETTINGS else (name.rpartition(".")[0] or name,)
    with atheris.instrument_imports(include=list(include)):
        from fuzz import target

        one_input = target(name).one_input

    state = {"target": name, "inputs": 0, "slowest_ms": 0.0, "started": time.time(), "updated": 0.0}
    last_write = [0.0]

    def write() -> None:
        state["updated"] = time.time()
        tmp = stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(stats_path)
        last_write[0] = time.monotonic()

    write()
    clock = time.process_time

    def test_one(data: bytes) -> None:
        start = clock()
        one_input(data)
        spent = clock() - start
        state["inputs"] += 1
        if spent * 1000 > state["slowest_ms"]:
            state["slowest_ms"] = spent * 1000
            stats_path.with_name("slowest-input").write_bytes(data)
            write()
        if spent > limit:
            raise SlowInput(f"one input took {spent * 1000:.0f} ms of CPU (the bound is {limit * 1000:.0f} ms)")
        if state["inputs"] == runs or (state["inputs"] & 1023 == 0 and time.monotonic() - last_write[0] >= 1):
            write()

    argv = [os.environ.get("FUZZ_ARGV0", sys.argv[0]), *sys.argv[1:]]
    atheris.Setup(argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
