"""Which CPython release the reference Runner imitates, and what that changes.

CPython's Runner is the same program in 3.11, 3.12, 3.13 and 3.14 except at a
handful of points. This module names those points once, as the fields of
``Behaviour``, and says for each supported ``(major, minor)`` which way it goes.
The reference Runner consults the table instead of the interpreter it runs on,
so one interpreter can imitate every supported release (within what its own
event loop and Task classes allow; see docs/spec.md, "Running on other
interpreters").

Standard library only; Python 3.9+.
"""

from __future__ import annotations

import sys
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

Version = Tuple[int, int]

OLDEST: Version = (3, 11)
NEWEST: Version = (3, 14)


class Behaviour(NamedTuple):
    """The version-dependent choices of one CPython release (see docs/spec.md).

    ``generators_are_coroutines``
        R-1: ``run()`` takes a plain generator object as a coroutine, because
        ``asyncio.iscoroutine`` still accepted ``types.GeneratorType``. Dropped
        in 3.12 (gh-102748).
    ``awaitables_accepted``
        R14-3: ``run()`` takes any awaitable, wrapping what is not a coroutine,
        and rejects the rest with ``TypeError`` instead of ``ValueError``
        (gh-120284, PR #120566).
    ``loop_checked_before_type``
        R14-2 (versus R-1..R-3): ``run()`` checks for a running loop and
        initialises the runner *before* it looks at the argument.
    ``run_accepts_loop_factory``
        A-1: ``asyncio.run()`` has a ``loop_factory`` keyword (gh-99388).
    ``executor_join_timeout``
        C-3: ``close()`` passes ``asyncio.constants.THREAD_JOIN_TIMEOUT`` to
        ``loop.shutdown_default_executor`` (GH-82448, PR #97561).
    """

    version: Version
    generators_are_coroutines: bool
    awaitables_accepted: bool
    loop_checked_before_type: bool
    run_accepts_loop_factory: bool
    executor_join_timeout: bool


_TABLE: Dict[Version, Behaviour] = {
    (3, 11): Behaviour((3, 11), True, False, False, False, False),
    (3, 12): Behaviour((3, 12), False, False, False, True, True),
    (3, 13): Behaviour((3, 13), False, False, False, True, True),
    (3, 14): Behaviour((3, 14), False, True, True, True, True),
}

#: The ``version=`` values the reference understands, oldest first.
SUPPORTED_VERSIONS: Tuple[Version, ...] = tuple(sorted(_TABLE))


def default_version() -> Version:
    """The running interpreter's ``(major, minor)``, clamped into ``SUPPORTED_VERSIONS``.

    3.9 and 3.10 (which have no ``asyncio.Runner``) get 3.11; anything newer
    than 3.14 gets 3.14, which is what 3.15 and main still do (research §1).
    """
    here = (sys.version_info[0], sys.version_info[1])
    return min(max(here, OLDEST), NEWEST)


def behaviour_for(version: Optional[Sequence[int]] = None) -> Behaviour:
    """The table row for ``version`` (``None``: ``default_version()``).

    Raises ``ValueError`` for a version outside ``SUPPORTED_VERSIONS`` and
    ``TypeError`` for something that is not a pair of integers.
    """
    if version is None:
        return _TABLE[default_version()]
    try:
        major, minor = version
    except (TypeError, ValueError):  # pragma: outside harness: versions come from the table
        raise TypeError(f"version must be a (major, minor) pair, got {version!r}") from None
    key = (major, minor)
    if key not in _TABLE:  # pragma: outside harness: versions come from the table
        supported = ", ".join(f"({a}, {b})" for a, b in SUPPORTED_VERSIONS)
        raise ValueError(f"unsupported version {version!r}; supported: {supported}")
    return _TABLE[key]
