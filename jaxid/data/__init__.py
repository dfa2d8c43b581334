"""Data on disk: chunked, resumable stores (:mod:`jaxid.data.store`).

``jaxid.data`` was once the module of the walker's gait data set, now :mod:`jaxid.walker.data`.
Its names (:func:`~jaxid.walker.data.generate_gait_dataset`, :func:`~jaxid.walker.data.load_dataset`,
:func:`~jaxid.walker.data.add_noise`, :class:`~jaxid.walker.data.GaitDataset`, ...) are still read
from here, on first use: the walker sits above this layer, so it is not imported with it.
"""

from .store import ChunkStore, ConfigMismatchError, StoredArray, create_store, open_store

__all__ = ["ChunkStore", "ConfigMismatchError", "StoredArray", "create_store", "open_store"]


def __getattr__(name: str):
    # The gait data set's names under their old path (code, notebooks and pickles that name them).
    if not (name.startswith("__") and name.endswith("__")):
        import importlib

        gait_data = importlib.import_module("jaxid.walker.data")
        if hasattr(gait_data, name):
            return getattr(gait_data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
