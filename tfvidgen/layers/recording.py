"""Values layers report for inspection (tfvidgen.explain) while a recording block is open."""

from __future__ import annotations

import contextlib

__all__ = ["recording"]


@contextlib.contextmanager
def recording(registry: list, found):
    """Registers `found` (a dict or list the reporting layers fill) in `registry` for the block,
    and yields it. Eager calls: inside a traced function the values would be symbolic."""
    registry.append(found)
    try:
        yield found
    finally:
        registry.remove(found)
