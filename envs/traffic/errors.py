"""The traffic family's error for scenarios and networks that cannot be built or read."""


class ScenarioError(ValueError):
    """A scenario that cannot be built or read; the message names the file or parameter."""
