"""The traffic family's error for scenarios and networks that cannot be built or read."""

from ctrlgym.errors import UsageError


class ScenarioError(UsageError):
    """A scenario that cannot be built or read; the message names the file or parameter."""
