"""Errors raised by the composition root."""


class CabinetError(Exception):
    """Base class for errors of the composition root (configuration, start-up)."""


class ConfigError(CabinetError):
    """The configuration is invalid. The message names the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration error: {key}: {problem}")
        self.key = key
        self.problem = problem
