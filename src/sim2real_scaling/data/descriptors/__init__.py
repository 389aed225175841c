"""Descriptor sets: each maps a list of molecule/composition keys to a fixed-width float matrix.

Every descriptor function has the signature ``f(keys, **params) -> (values, names)`` where
``values`` is a float64 array of shape ``(len(keys), d)`` and ``names`` the ``d`` column names.
A key that cannot be featurized raises :class:`DescriptorError` naming it.
"""


class DescriptorError(ValueError):
    """A molecule or composition could not be featurized; the message names it."""
