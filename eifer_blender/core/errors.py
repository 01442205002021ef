"""Errors the user sees. Their messages are written for people, not for developers."""


class EiferError(Exception):
    """Base class: anything raised as EiferError is shown to the user as it is."""


class InputError(EiferError):
    """A file, argument or scene the user gave cannot be used (CLI exit code 3)."""


class ModelMismatchError(InputError):
    """A model does not fit the recording or rig (channels, space, fps)."""


class FlameModelError(InputError):
    """A FLAME model file is missing, damaged, malformed or not a FLAME model."""


class UnsafePickleError(FlameModelError):
    """A pickle asked to run something a FLAME model never needs; nothing of it was run."""
