"""What can go wrong that is the user's to fix, as opposed to a bug.

A command-line tool reports a :class:`UserError` (and an ``OSError``: a missing file, a full
disk, a folder it may not write) in one line with a non-zero exit; anything else is a bug and
keeps its traceback. The three kinds:

- :class:`ConfigError`: a setting or flag value that cannot work (a negative count, an unknown
  choice, options that do not fit together). Also a ``ValueError``, so that argparse reports one
  raised by a ``type=`` function as a flag error, and code that caught ``ValueError`` still does.
- :class:`InputFileError`: a file or folder given to a command that is missing, unreadable,
  corrupt, of the wrong shape or kind, hostile (a pickle that would run code), or not the
  project's to replace.
- :class:`ResourceError`: the machine or the run, not the input: memory, disk, devices, a run
  directory another process holds, a process of the run that was lost.

This module imports nothing from the package, so that every layer can raise these.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: reported in one line, without a traceback."""


class ConfigError(UserError, ValueError):
    """A setting or flag value that cannot work, or settings that do not fit together."""


class InputFileError(UserError):
    """An input file or folder that is missing, unreadable, corrupt, of the wrong shape or kind,
    hostile, or not the project's."""


class ResourceError(UserError, RuntimeError):
    """Memory, disk, a device, a run directory in use, or a lost process of the run."""


class CheckpointError(InputFileError, ValueError):
    """A checkpoint directory that is missing, incomplete or of another format.

    Defined here, below both ``weights`` (which writes checkpoints) and ``runtime`` (whose run
    directories hold them); ``mlss_jax.weights.checkpoint`` exports it too.
    """
