"""The one exception type for a user's mistake.

Anything raised as :class:`NoshowError` is the user's to fix (a bad file, flag or model) and is
printed by the CLI as one line ``noshow: error: <message>`` with exit status 2. Every other
exception is a bug and is allowed to crash with a traceback.
"""


class NoshowError(Exception):
    """A user error: bad input file, bad flag value or bad model file."""


class ProcessError(NoshowError):
    """A failure of one process of a data-parallel run (its peer died, its port was taken): every
    process says its own. Other errors are the same in every process, and rank 0 alone says them."""
