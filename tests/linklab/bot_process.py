"""A bot in its own process (``python -m bots``), stopped whatever happened."""

from __future__ import annotations

import subprocess
from pathlib import Path


class BotProcess:
    """A publishing bot in its own process (``python -m bots.cli``): its media timing is not at the mercy
    of the test process, where the server, the page's sampler and the lab's controls share one GIL (an
    in-process bot's audio once arrived 300 ms late on a loaded 2-core machine, and the page concealed
    it)."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""
