"""The audit trail's keys and where its checkpoints go: what the database's write path needs.

Both keys derive from the server's secret key (the data directory's ``secret.key`` or the configured
``meetings.secret_key``), which is never stored in the database: the chain key makes every row's hash
an HMAC, the checkpoint key signs the checkpoints written after each commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from meetings.audit import Head
from meetings.audit_checkpoints import Checkpoint, CheckpointFile, CheckpointSigner
from meetings.tokens import derive_key

log = logging.getLogger("cabinet.audit")


def chain_key(secret_key: str) -> bytes:
    """The key of the chain's row hashes (also what migrations that re-seal the chain need)."""
    return derive_key(secret_key, "audit-chain")


class AuditTrail:
    def __init__(self, secret_key: str, checkpoint_dir: Path | None) -> None:
        self.chain_key = chain_key(secret_key)
        self.signer = CheckpointSigner(derive_key(secret_key, "audit-checkpoint"))
        self.file = CheckpointFile(checkpoint_dir) if checkpoint_dir is not None else None
        self._file_failing = False

    def committed(self, head: Head) -> Checkpoint:
        """Write a signed checkpoint of a head that was just committed, to the file and the log."""
        checkpoint = self.signer.sign(head.seq, head.hash)
        if self.file is not None:
            try:
                self.file.append(checkpoint)
                self._file_failing = False
            except OSError as exc:
                # The row is committed; only this copy of the evidence is missing. Say so once per outage.
                if not self._file_failing:
                    log.error("cannot write the audit checkpoint file",
                              extra={"event": "audit.checkpoint_failed", "file": str(self.file.path),
                                     "error": exc.strerror or str(exc)})
                self._file_failing = True
        log.info(checkpoint.text(), extra={"event": "audit.checkpoint"})
        return checkpoint

    def stored_checkpoints(self) -> list[Checkpoint]:
        return self.file.read() if self.file is not None else []

    def check(self, checkpoints: Iterable[Checkpoint]) -> tuple[list[Checkpoint], list[Checkpoint]]:
        """Split checkpoints into those signed with this server's key and those that are not."""
        valid: list[Checkpoint] = []
        forged: list[Checkpoint] = []
        for checkpoint in checkpoints:
            (valid if self.signer.valid(checkpoint) else forged).append(checkpoint)
        return valid, forged
