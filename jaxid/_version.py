"""The installed version of jaxid, read from the package metadata (its one source is the ``version``
field of ``pyproject.toml``); ``jaxid.__version__`` re-exports it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jaxid")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
