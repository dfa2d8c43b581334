r"""Files that are whole or absent: atomic writes, checksummed framed files and their checks.

Every file jaxid writes (estimators, hybrid models, training checkpoints, data sets, study
reports) goes through this module, so that

- a write interrupted at any point (an exception, ``SIGKILL``, a power cut after the rename)
  leaves either the previous file or the new one, never a mixture: the bytes go to a temporary
  file in the destination's directory, are flushed to disk (``fsync``), then renamed over the
  destination with :func:`os.replace` (atomic on POSIX and Windows within one file system);
- a file that is damaged afterwards is detected on load: a *framed* file is one JSON header line
  followed by a binary payload, and the header records the payload's length :math:`n` and its
  SHA-256 digest :math:`h = \mathrm{SHA256}(\text{payload})`; :func:`read_framed` recomputes both;
- every way a file can be wrong (missing header, empty, truncated, another kind of file, a
  checksum mismatch, arrays of the wrong shape) raises one exception, :class:`CorruptFileError`,
  whose message names the file and what is wrong.

Layout of a framed file::

    {"jaxid": "<kind>", "format": <int>, "payload_bytes": n, "payload_sha256": "<hex>", ...}\n
    <n payload bytes>

The payload of a pytree is ``equinox.tree_serialise_leaves`` of it (:func:`tree_to_bytes`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "CorruptFileError",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "fingerprint",
    "read_framed",
    "read_header",
    "sha256",
    "tree_from_bytes",
    "tree_to_bytes",
    "write_framed",
]

_RESERVED = ("jaxid", "format", "payload_bytes", "payload_sha256")

Tree = TypeVar("Tree")
"""A pytree (arrays in nested tuples, lists, dicts and equinox Modules); in
:func:`tree_from_bytes`, the result has the structure of the skeleton ``like``."""


class CorruptFileError(ValueError):
    """A file that cannot be what it should be: empty, truncated, of another kind, or with bytes
    that do not match their checksum. The message names the file and the problem."""


def sha256(data: bytes) -> str:
    """The SHA-256 digest of ``data`` as 64 hex characters."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path`` for writing (``mode`` ``"wb"`` or ``"w"``); when the
    ``with`` block ends normally, flush it to disk and rename it over ``path``. If the block
    raises, the temporary file is removed and ``path`` is left as it was. Missing parent
    directories are created. A process killed while writing (``SIGKILL``) cannot remove its
    temporary file, ``.<name>.<random>.tmp``: ``path`` is whole, and the leftover may be deleted."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_framed(
    path: str | os.PathLike, header: dict, payload: bytes, *, kind: str, format: int = 1
) -> Path:
    """Write a framed file atomically: the JSON ``header`` (plus ``kind``, ``format``, the
    payload's length and SHA-256) on one line, then ``payload``. ``header`` must be JSON-able and
    must not use the reserved keys ``jaxid``, ``format``, ``payload_bytes``, ``payload_sha256``."""
    clash = [k for k in _RESERVED if k in header]
    if clash:
        raise ValueError(f"write_framed: header keys {clash} are reserved")
    full = dict(jaxid=kind, format=format, payload_bytes=len(payload), payload_sha256=sha256(payload))
    full.update(header)
    line = json.dumps(full, allow_nan=True).encode("utf-8") + b"\n"
    return atomic_write_bytes(path, line + payload)


def _what(kind: str) -> str:
    return f"a jaxid {kind} file"


def _parse_header(path: Path, first: bytes, kind: str) -> dict:
    if not first:
        raise CorruptFileError(f"{path} is empty (0 bytes), not {_what(kind)}")
    if not first.endswith(b"\n"):
        raise CorruptFileError(
            f"{path} is not {_what(kind)}: no header line (truncated, or a file of another kind)"
        )
    try:
        header = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptFileError(
            f"{path} is not {_what(kind)}: its first line is not a JSON header (a file of another kind, "
            "or corrupted)"
        ) from None
    if not isinstance(header, dict) or "jaxid" not in header:
        raise CorruptFileError(f"{path} is not {_what(kind)}: its header has no 'jaxid' kind")
    if header["jaxid"] != kind:
        raise CorruptFileError(f"{path} is a jaxid {header['jaxid']!r} file, not {_what(kind)}")
    for key in ("format", "payload_bytes", "payload_sha256"):
        if key not in header:
            raise CorruptFileError(f"{path}: the header of {_what(kind)} lacks {key!r} (corrupted)")
    return header


def _open(path: str | os.PathLike, where: str):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{where}: {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{where}: {path} is a directory, not a file")
    return path, open(path, "rb")


def read_header(path: str | os.PathLike, *, kind: str, formats: tuple[int, ...] = (1,)) -> dict:
    """The header of a framed file of ``kind`` (without the reserved keys), after checking the
    kind and the format but not the payload (cheap; :func:`read_framed` checks both)."""
    path, f = _open(path, "read_header")
    with f:
        header = _parse_header(path, f.readline(), kind)
    _check_format(path, header, kind, formats)
    return {k: v for k, v in header.items() if k not in _RESERVED}


def _check_format(path: Path, header: dict, kind: str, formats: tuple[int, ...]) -> None:
    if header["format"] not in formats:
        raise CorruptFileError(
            f"{path} is {_what(kind)} of format {header['format']!r}; this jaxid reads format(s) "
            f"{list(formats)}: write it again with this version"
        )


def read_framed(path: str | os.PathLike, *, kind: str, formats: tuple[int, ...] = (1,)) -> tuple[dict, bytes]:
    """Read a framed file of ``kind`` written by :func:`write_framed` and verify it.

    **Returns:** ``(header, payload)``, the header without the reserved keys.

    **Raises:** :class:`CorruptFileError` naming the file if it is empty, has no JSON header, is
    another kind of file or an unknown ``format``, is shorter or longer than its header says
    (truncated or appended to), or its payload's SHA-256 differs from the header's (corrupted
    bytes); ``FileNotFoundError`` if it does not exist.
    """
    path, f = _open(path, "read_framed")
    with f:
        header = _parse_header(path, f.readline(), kind)
        _check_format(path, header, kind, formats)
        payload = f.read()
    n = header["payload_bytes"]
    if len(payload) < n:
        raise CorruptFileError(
            f"{path} is truncated: {len(payload)} of the {n} payload bytes its header announces"
        )
    if len(payload) > n:
        raise CorruptFileError(
            f"{path} has {len(payload) - n} bytes more than its header announces (corrupted or appended to)"
        )
    if sha256(payload) != header["payload_sha256"]:
        raise CorruptFileError(
            f"{path} is corrupted: the SHA-256 checksum of its {n} payload bytes does not match its header"
        )
    return {k: v for k, v in header.items() if k not in _RESERVED}, payload


def tree_to_bytes(tree: Any) -> bytes:
    """The payload of a pytree: ``equinox.tree_serialise_leaves`` into memory."""
    import equinox as eqx  # here, not at the top: writing plain files needs no JAX

    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    return buf.getvalue()


def tree_from_bytes(payload: bytes, like: Tree, *, path: str | os.PathLike = "<bytes>") -> Tree:
    """The pytree of :func:`tree_to_bytes`'s ``payload``, with ``like``'s structure (a skeleton of
    the same shapes and dtypes).

    **Raises:** :class:`CorruptFileError` naming ``path`` if the payload does not hold exactly
    ``like``'s arrays (a different number, shape or dtype, or bytes left over)."""
    import equinox as eqx
    import jax

    buf = io.BytesIO(payload)
    try:
        tree = eqx.tree_deserialise_leaves(buf, like)
    except Exception as err:  # numpy raises ValueError, EOFError, OSError or UnpicklingError here
        raise CorruptFileError(
            f"{path}: its arrays do not match the expected layout ({type(err).__name__}: {err})"
        ) from None
    left = len(payload) - buf.tell()
    if left:
        raise CorruptFileError(f"{path}: {left} bytes left over after its arrays (another layout)")
    got, want = jax.tree.leaves(tree), jax.tree.leaves(like)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if hasattr(b, "shape") and (np.shape(a) != np.shape(b) or np.asarray(a).dtype != np.asarray(b).dtype):
            raise CorruptFileError(
                f"{path}: array {i} has shape {np.shape(a)} and dtype {np.asarray(a).dtype}, expected "
                f"{np.shape(b)} and {np.asarray(b).dtype} (another layout)"
            )
    return tree


def read_module(
    path: str | os.PathLike,
    build: Callable[[dict], Tree],
    *,
    kind: str,
    what: str,
    formats: tuple[int, ...] = (1,),
) -> tuple[Tree, dict]:
    """A pytree saved with :func:`write_framed` and :func:`tree_to_bytes`: :func:`read_framed`,
    then ``build(header)`` makes the skeleton its arrays are read into.

    **Returns:** ``(tree, header)``. **Raises:** :class:`CorruptFileError` as :func:`read_framed`
    and :func:`tree_from_bytes` do, and naming ``path`` if ``build`` cannot read the header (a
    ``KeyError``, ``TypeError`` or ``ValueError``: "its header does not describe ``what``")."""
    header, payload = read_framed(path, kind=kind, formats=formats)
    try:
        skeleton = build(header)
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptFileError(f"{path}: its header does not describe {what} ({err})") from None
    return tree_from_bytes(payload, skeleton, path=path), header


def fingerprint(*parts) -> str:
    """A SHA-256 over ``parts``: JSON-able values by their canonical JSON, arrays by shape, dtype
    and bytes (order matters). Two calls agree exactly when every part is equal."""
    h = hashlib.sha256()
    for part in parts:
        if hasattr(part, "__array__") and hasattr(part, "shape"):  # NumPy and JAX arrays
            a = np.ascontiguousarray(np.asarray(part))
            h.update(json.dumps(["array", list(a.shape), a.dtype.str]).encode())
            h.update(a.tobytes())
        else:
            h.update(json.dumps(["json", part], sort_keys=True, default=repr).encode())
    return h.hexdigest()
