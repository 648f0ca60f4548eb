"""The exceptions mtbt raises for problems a user can fix.

The CLI prints any :class:`MtbtError` as one line on stderr and exits non-zero;
anything else is a bug and keeps its traceback.
"""


class MtbtError(Exception):
    """Base class: a problem with the user's input, files or environment."""


class ConfigError(MtbtError):
    """A run file or a ``--set`` override is invalid (the message names file and key)."""


class DataError(MtbtError):
    """A bar or VIX file breaks the data contract (the message names file and rule)."""


class BrokerError(MtbtError):
    """The broker refused or failed an operation."""


class StateError(MtbtError):
    """The paper trader's state file is held by another session, corrupt or not mtbt's."""
