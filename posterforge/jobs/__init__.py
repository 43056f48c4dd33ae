"""Typed jobs: one frozen dataclass per command, validated once when it is made.

The CLI parses its options into a job and runs it through the same function a Python user calls
(:mod:`posterforge.api`); nothing downstream checks an option again. Field types are enums or
``Literal`` types; a bad value raises :class:`~posterforge.errors.PosterforgeError` with a line
that names the option as the user typed it. No module here imports torch.
"""
