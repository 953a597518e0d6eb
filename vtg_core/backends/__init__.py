"""Model backends. The built-in one, ``transformers``, is registered by :mod:`.plugin`.

Importing this package imports nothing heavy: the backend itself
(:mod:`vtg_core.backends.transformers_backend`, torch + transformers + peft) is loaded only when a
``BackendSpec`` factory is resolved.
"""
