"""A tiny synchronous event emitter (the object model's ``close`` and change events)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Listener = Callable[..., Any]


class EventEmitter:
    """``on``/``once``/``off``/``emit``. Listeners run synchronously, in registration order.

    A listener that raises is logged and does not stop the others: one broken subscriber
    (signaling, a recorder) must never break forwarding for everybody else.
    """

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, event: str, listener: Listener | None = None) -> Any:
        """Register ``listener`` for ``event``; usable as a decorator when listener is None."""
        if listener is None:

            def decorator(fn: Listener) -> Listener:
                self.on(event, fn)
                return fn

            return decorator
        self._listeners.setdefault(event, []).append(listener)
        return listener

    def once(self, event: str, listener: Listener) -> Listener:
        def wrapper(*args: Any) -> None:
            self.off(event, wrapper)
            listener(*args)

        return self.on(event, wrapper)

    def off(self, event: str, listener: Listener) -> None:
        listeners = self._listeners.get(event)
        if listeners and listener in listeners:
            listeners.remove(listener)

    def remove_all_listeners(self) -> None:
        self._listeners.clear()

    def listener_count(self, event: str) -> int:
        return len(self._listeners.get(event, ()))

    def emit(self, event: str, *args: Any) -> None:
        listeners = self._listeners.get(event)
        if not listeners:
            return
        for listener in list(listeners):
            try:
                listener(*args)
            except Exception:  # noqa: BLE001 - a listener must not break the emitter
                logger.exception("listener for %r raised", event)
