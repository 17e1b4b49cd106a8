"""Errors raised by lavida_core for bad input; their messages say what was wrong and what to do."""


class InputError(ValueError):
    """Frames, anomaly types or a checkpoint that the model cannot take."""


class CheckpointError(InputError):
    """A checkpoint file or folder whose keys or shapes do not fit the model being built."""
