"""Values layers report for inspection (tfvidgen.explain) while a recording block is open."""

from __future__ import annotations

import contextlib

__all__ = ["Recorder"]


class Recorder:
    """The collections open for a reporting layer to fill: `recording()` opens one (a new
    `container()`: list or dict) for a block and yields it; the layer adds what it computes to
    each of `open`. Eager calls: inside a traced function the values would be symbolic."""

    def __init__(self, container=list):
        self._container = container
        self._open: list = []

    @contextlib.contextmanager
    def recording(self):
        found = self._container()
        self._open.append(found)
        try:
            yield found
        finally:
            self._open.remove(found)

    @property
    def open(self) -> list:
        return list(self._open)
