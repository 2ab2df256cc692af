"""ctrlgym's own error types.

Every error ctrlgym raises about what a user gave it (a config, a run directory, an action, a
scenario, a simulator that died) derives from :class:`CtrlgymError` and says in one line what was
wrong. The CLI prints those as one line; any other exception is a bug and keeps its traceback.
Each also derives from the built-in type code would catch (``ValueError``, ``FileNotFoundError``, ...).
"""

from __future__ import annotations

__all__ = ["CtrlgymError", "UsageError", "ActionError", "RunExistsError", "SavedAgentError"]


class CtrlgymError(Exception):
    """Base of ctrlgym's own errors: the message names what was wrong and how to fix it."""


class UsageError(CtrlgymError, ValueError):
    """A value, name or combination of arguments ctrlgym cannot use."""


class ActionError(UsageError):
    """A batch of actions an env cannot take (shape, dtype, NaN, out of range, device); names the env."""


class RunExistsError(CtrlgymError, FileExistsError):
    """A run directory that already holds what a command would write (resume it, or overwrite it)."""


class SavedAgentError(CtrlgymError, ValueError):
    """A saved agent (checkpoint or final model) that is missing, unreadable or of another algorithm; names the file."""
