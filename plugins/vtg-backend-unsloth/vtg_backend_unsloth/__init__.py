"""vtg-backend-unsloth: the ``unsloth`` model backend for vtg (``vtg train --backend unsloth``).

Importing this package imports neither torch nor unsloth: the backend class lives in
:mod:`vtg_backend_unsloth.backend`, loaded only when a run picks the backend.
"""

__version__ = "0.1.0"
