"""The reference Runner: an executable specification of CPython's ``asyncio.Runner``.

``Runner`` and ``run`` behave like ``asyncio.Runner`` and ``asyncio.run`` of the
CPython release chosen with ``version=`` (3.11 to 3.14; by default the running
interpreter's, clamped into that range, see ``default_version()``), on the
running interpreter's own event loop and Task classes. ``cancel_order=`` lets
the differential harness choose the order that CPython leaves unspecified.

The clauses are written out in docs/spec.md; each method cites the ones it
implements. Standard library only; Python 3.9+.
"""

from __future__ import annotations

from .runner import Runner, run
from .versions import SUPPORTED_VERSIONS, default_version

__all__ = ("SUPPORTED_VERSIONS", "Runner", "default_version", "run")
