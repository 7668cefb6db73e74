"""The one exception type that the command line turns into a clean error line.

Code at an input boundary (constructor, CLI argument, file reader) raises ``SsdfaError`` (or
``ValueError``/``TypeError`` in library code) with a message that names the bad value. The CLI
prints ``ssdfa: error: <message>`` and exits with status 2, without a traceback.
"""


class SsdfaError(Exception):
    """Bad input that the user can fix: a format that cannot exist, a missing file, ..."""
