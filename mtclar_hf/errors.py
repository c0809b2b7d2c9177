"""Errors that reach the user as one line.

Every problem with user input (a file, a config, a label) is raised as a subclass of
:class:`MTCLARError` whose message names the file (or option) and the problem. The CLI
prints that message on one line and exits non-zero; anything else is a bug and keeps
its traceback.
"""


class MTCLARError(Exception):
    """A problem with user input, explained in one line."""

    exit_code = 1

    def __init__(self, message: str):
        # One line, whatever the cause carried: multi-line messages break log parsing.
        super().__init__(" ".join(str(message).split()))


class InputFileError(MTCLARError, ValueError):
    """A file or folder given by the user is missing, unreadable or malformed."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ConfigError(MTCLARError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class LabelError(MTCLARError, ValueError):
    """A valence/arousal label or support set is invalid."""


class UnsafeModelError(MTCLARError):
    """A model folder holds something we refuse to load (pickle weights, mismatched config)."""
