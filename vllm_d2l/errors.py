"""Errors a user can act on.

Everything that can go wrong because of input (text, files, checkpoints) raises a subclass of
`D2LError` with a message naming the problem, so the CLI prints one line and the server maps it to
a 4xx instead of leaking a traceback from deep inside torch.
"""


class D2LError(Exception):
    """Base class: a problem with the user's input or files, not a bug."""


class BadDocument(D2LError):
    """The text cannot be internalized (empty, not UTF-8, too long)."""


class ModelMismatch(D2LError):
    """A checkpoint or adapter was made for another base model."""


class MissingModel(D2LError):
    """A model or checkpoint folder is missing or incomplete."""


class MissingCorpora(D2LError):
    """A training run needs public-domain text this machine has not installed."""
