"""Exit codes every command keeps, so CI scripts can branch on them."""

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0
    FAIL = 1
    INCONCLUSIVE = 2
    USAGE = 3  # usage or configuration error: nothing was run
