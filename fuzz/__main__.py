"""``python -m fuzz <target|all> [--runs N] [--seconds S]``: the fuzzing campaign.

Each target runs in its own atheris process (libFuzzer ends the process when it is done), reading
fuzz/corpus/<target>/ and writing what it discovers to <work>/<target>/corpus/; a crash, a broken
property or an input over the time bound stops that target and leaves the input in
<work>/<target>/artifacts/. Printed per target: inputs executed, seconds, inputs/s, crashes, the
slowest input (CPU ms) and the corpus size. Exit status 1 when any target found something.

    python -m fuzz all --runs 1000000            the long run (README: "Fuzzing the network parsers")
    python -m fuzz sdp --seconds 60 --merge      fold the inputs that add coverage into fuzz/corpus/sdp
    python -m fuzz replay all                    every corpus file once, in this process (no atheris)
    python -m fuzz merge sdp DIR...              fold a run's discoveries (DIR: <work>/sdp/corpus) into it
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fuzz import CORPUS, SETTINGS, TARGETS, target

ROOT = Path(__file__).resolve().parent.parent
#: What fuzz/corpus/<target>/ may hold after a merge (tests/test_fuzz.py holds the suite to it).
MAX_CORPUS_FILES = 200
MAX_CORPUS_BYTES = 1_000_000


@dataclass
class Result:
    target: str
    inputs: int
    seconds: float
    crashes: int
    slowest_ms: float
    corpus: int
    new: int
    artifacts: list[str]
    log: str

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


def _script(work: Path) -> Path:
    """An executable that starts the child (libFuzzer re-executes argv[0] for -merge; the FUZZ_*
    environment is inherited)."""
    script = work / "run.sh"
    script.write_text(f"#!/bin/sh\ncd '{ROOT}'\nexec '{sys.executable}' -m fuzz._child \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def run_target(name: str, *, runs: int | None, seconds: float | None, max_ms: float, work: Path,
               merge: bool = False, quiet: bool = True) -> Result:
    base = work / name
    found, artifacts, stats = base / "corpus", base / "artifacts", base / "stats.json"
    shutil.rmtree(artifacts, ignore_errors=True)
    for path in (found, artifacts):
        path.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / name if name in SETTINGS else None
    if seeds is not None:
        seeds.mkdir(parents=True, exist_ok=True)
    max_len = SETTINGS[name][0] if name in SETTINGS else 4096
    env = {"FUZZ_TARGET": name, "FUZZ_STATS": str(stats), "FUZZ_MAX_MS": str(max_ms), "FUZZ_RUNS": str(runs or -1)}
    script = _script(base)
    env["FUZZ_ARGV0"] = str(script)
    args = [str(script), str(found), *([str(seeds)] if seeds else []), f"-max_len={max_len}", "-timeout=10",
            "-rss_limit_mb=3072", f"-artifact_prefix={artifacts}/", "-print_final_stats=1", "-print_pcs=0"]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={int(seconds)}")
    log = base / "fuzz.log"
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                              env={**os.environ, **env, "PYTHONPATH": pythonpath})
    elapsed = time.monotonic() - started
    state = json.loads(stats.read_text()) if stats.exists() else {}
    text = log.read_text(errors="replace")
    done = re.search(r"Done (\d+) runs in (\d+) second", text)
    inputs = max(int(state.get("inputs", 0)), int(done.group(1)) if done else 0)
    found_files = sorted(artifacts.iterdir())
    crashes = len(found_files) + (1 if proc.returncode != 0 and not found_files else 0)
    if merge and seeds is not None and crashes == 0:
        merge_into_corpus(name, [found], work=work)
    if not quiet or crashes:
        tail = "\n".join(text.splitlines()[-40:])
        print(f"--- {name}: {log}\n{tail}", file=sys.stderr)
    return Result(name, inputs, elapsed, crashes, float(state.get("slowest_ms", 0.0)),
                  len(list(seeds.iterdir())) if seeds else 0, len(list(found.iterdir())),
                  [str(p) for p in found_files], str(log))


def merge_into_corpus(name: str, sources: list[Path], *, work: Path) -> int:
    """Fold the inputs of ``sources`` that add coverage into fuzz/corpus/<name>/ (libFuzzer's set-cover
    merge); when that passes MAX_CORPUS_FILES or MAX_CORPUS_BYTES, merge again counting edges only (no
    hit counts), which keeps every edge with far fewer files. Seeds (seed-*) and the inputs kept by
    hand (found-*) always stay. Returns the corpus size."""
    corpus = CORPUS / name
    base = work / name
    base.mkdir(parents=True, exist_ok=True)
    script = _script(base)
    env = {**os.environ, "FUZZ_TARGET": name, "FUZZ_STATS": str(base / "merge.json"), "FUZZ_ARGV0": str(script),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    pool = base / "merge-pool"
    shutil.rmtree(pool, ignore_errors=True)
    pool.mkdir()
    for path in corpus.iterdir():  # what earlier merges kept competes again with the new inputs
        if not path.name.startswith(("seed-", "found-")):
            path.rename(pool / path.name)
    for counters in ("1", "0"):
        subprocess.run([str(script), "-set_cover_merge=1", f"-use_counters={counters}", str(corpus), str(pool),
                        *map(str, sources), f"-max_len={SETTINGS[name][0]}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        files = list(corpus.iterdir())
        if len(files) <= MAX_CORPUS_FILES and sum(p.stat().st_size for p in files) <= MAX_CORPUS_BYTES:
            break
        for path in files:
            if not path.name.startswith(("seed-", "found-")):
                path.unlink()
    return len(list(corpus.iterdir()))


def replay(name: str, max_ms: float) -> Result:
    """Every corpus file of ``name`` once, in this process."""
    one_input = target(name).one_input
    files = sorted((CORPUS / name).iterdir())
    slowest = 0.0
    crashes: list[str] = []
    started = time.monotonic()
    for path in files:
        begin = time.process_time()
        try:
            one_input(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - reported
            crashes.append(f"{path}: {type(exc).__name__}: {exc}"[:300])
            continue
        spent = (time.process_time() - begin) * 1000
        slowest = max(slowest, spent)
        if spent > max_ms:
            crashes.append(f"{path}: {spent:.0f} ms")
    return Result(name, len(files), time.monotonic() - started, len(crashes), slowest, len(files), 0, crashes, "")


def table(results: list[Result]) -> str:
    rows = [f"{'target':<10} {'inputs':>10} {'seconds':>8} {'inputs/s':>9} {'crashes':>7} {'slowest ms':>10} "
            f"{'corpus':>6} {'new':>6}"]
    for r in results:
        rows.append(f"{r.target:<10} {r.inputs:>10} {r.seconds:>8.1f} {r.rate:>9.0f} {r.crashes:>7} "
                    f"{r.slowest_ms:>10.1f} {r.corpus:>6} {r.new:>6}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="+", help="'all', target names, or 'replay' followed by targets")
    parser.add_argument("--runs", type=int, help="inputs per target (libFuzzer -runs)")
    parser.add_argument("--seconds", type=float, help="time per target (libFuzzer -max_total_time)")
    parser.add_argument("--max-ms", type=float, default=1000.0, help="CPU time one input may take (default 1000)")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once (default 1)")
    parser.add_argument("--work", type=Path, help="where discoveries, logs and crashes go (default: a temp dir)")
    parser.add_argument("--merge", action="store_true", help="fold coverage-adding inputs into fuzz/corpus/")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    what = options.what
    if what[0] == "merge":  # python -m fuzz merge <target> DIR...: fold a run's discoveries into the corpus
        work = options.work or Path(tempfile.gettempdir()) / "cabinet-fuzz"
        size = merge_into_corpus(what[1], [Path(p) for p in what[2:]], work=work)
        print(f"{what[1]}: corpus {size} files")
        return 0
    if what[0] == "replay":
        names = list(TARGETS) if what[1:] in ([], ["all"]) else what[1:]
        results = [replay(name, options.max_ms) for name in names]
        for result in results:
            for line in result.artifacts:
                print(line, file=sys.stderr)
    else:
        names = list(TARGETS) if what == ["all"] else what
        if options.runs is None and options.seconds is None:
            parser.error("give --runs and/or --seconds")
        work = options.work or Path(tempfile.gettempdir()) / "cabinet-fuzz"
        with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
            results = list(pool.map(lambda name: run_target(name, runs=options.runs, seconds=options.seconds,
                                                            max_ms=options.max_ms, work=work, merge=options.merge),
                                    names))
        for result in results:
            for path in result.artifacts:
                print(f"{result.target}: crash input {path}", file=sys.stderr)
    print(table(results))
    if options.json:
        options.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 1 if any(r.crashes for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
