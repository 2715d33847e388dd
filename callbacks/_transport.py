"""Documents over 0MQ without pickle: a msgpack codec and a dispatcher no message can stop.

bluesky's ``Publisher`` / ``RemoteDispatcher`` pickle documents by default: anyone who
can publish to the proxy runs code in the consumer, which holds the Tiled key. Both ends
take a serializer; :func:`msgpack_serializer` / :func:`msgpack_deserializer` carry
numpy arrays in ``msgpack_numpy``'s layout (so a RunEngine side may use
``msgpack.packb(doc, default=msgpack_numpy.encode)`` instead) but decode only plain
numeric, boolean and string arrays: ``msgpack_numpy.decode`` itself unpickles object
arrays, which is refused here. :class:`SafeRemoteDispatcher` drops a message it cannot
split, name or decode, and goes on.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
from bluesky.callbacks.zmq import RemoteDispatcher
from bluesky.run_engine import DocumentNames

from bcdi_online._errors import ServiceError

logger = logging.getLogger(__name__)


class RefusedMessageError(ValueError):
    """A message that decodes but carries what is never accepted (object numpy data)."""


_KINDS = frozenset("biufcSU")
"""numpy dtype kinds a message may carry: bool, integers, floats, complex, bytes, str."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in _KINDS and obj.dtype.names is None and not obj.dtype.hasobject:
            return {
                b"nd": True,
                b"type": obj.dtype.str,
                b"kind": b"",
                b"shape": list(obj.shape),
                b"data": np.ascontiguousarray(obj).tobytes(),
            }
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    return str(obj)  # enums, paths, dates: never raise into the RunEngine


def _plain(value: Any) -> Any:
    """``value`` with string keys and integers msgpack can hold (others as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def msgpack_serializer(doc: dict[str, Any]) -> bytes:
    """Pack a document for ``Publisher(..., serializer=msgpack_serializer)``; never raises.

    numpy arrays of numbers, booleans or strings travel as arrays (``msgpack_numpy``
    layout); other arrays as lists; anything msgpack cannot pack as its ``str``.
    """
    try:
        return msgpack.packb(doc, default=_encode, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):  # huge ints, odd keys: a plainer copy
        return msgpack.packb(_plain(doc), default=_encode, use_bin_type=True)


def _decode(obj: dict[Any, Any]) -> Any:
    if b"nd" in obj:
        kind, descr = obj.get(b"kind", b""), obj.get(b"type")
        if kind not in (b"", "", None) or not isinstance(descr, str | bytes):
            raise RefusedMessageError(
                f"numpy data of kind {kind!r} refused (object or structured)"
            )
        dtype = np.dtype(descr.decode() if isinstance(descr, bytes) else descr)
        if dtype.kind not in _KINDS or dtype.hasobject or dtype.names is not None:
            raise RefusedMessageError(f"numpy dtype {dtype} refused")
        data = obj[b"data"]
        if not isinstance(data, bytes):
            raise ValueError("numpy data must be bytes")
        if obj[b"nd"] is True:
            shape = tuple(int(n) for n in obj[b"shape"])
            if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize != len(data):
                raise ValueError(f"{len(data)} bytes do not hold a {dtype} array of {shape}")
            return np.frombuffer(data, dtype).reshape(shape)  # read-only: never modified
        if len(data) != dtype.itemsize:
            raise ValueError(f"{len(data)} bytes do not hold one {dtype}")
        return np.frombuffer(data, dtype)[0]
    if b"complex" in obj:
        text = obj[b"data"]
        return complex(text.decode() if isinstance(text, bytes) else str(text))
    return obj


def msgpack_deserializer(data: bytes) -> dict[str, Any]:
    """Unpack a document packed by :func:`msgpack_serializer` (or ``msgpack_numpy``).

    Raises
    ------
    ValueError
        If the bytes are not msgpack, not a mapping, or carry object / structured numpy
        data (which ``msgpack_numpy`` would unpickle).
    """
    try:
        doc = msgpack.unpackb(data, object_hook=_decode, raw=False)
    except RefusedMessageError:
        raise
    except Exception as err:  # msgpack's own errors (ExtraData, FormatError, ...)
        raise ValueError(f"not a msgpack document ({type(err).__name__}: {err})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"a document must be a mapping, got {type(doc).__name__}")
    return doc


def is_loopback(address: str) -> bool:
    """Whether a 0MQ address (``host:port``, ``tcp://host:port``) is on this machine only."""
    host = address.partition("://")[2] if "://" in address else address
    if address.startswith("ipc://") or address.startswith("inproc://"):
        return True
    host = host.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SafeRemoteDispatcher(RemoteDispatcher):
    """bluesky's ``RemoteDispatcher`` where one bad message never stops the loop.

    bluesky's ``_poll`` looks the document name up outside its ``try``: an unknown name
    raises and ends ``start()``. Here a message that cannot be split, whose name is not
    a document name, that the deserializer refuses or that is not a mapping is dropped
    and counted (:attr:`dropped`), logged without its content; errors of the callbacks
    are logged. The default deserializer is :func:`msgpack_deserializer`.
    """

    def __init__(
        self,
        address: str,
        *,
        deserializer: Callable[[bytes], Any] = msgpack_deserializer,
        **kwargs: Any,
    ) -> None:
        # never bluesky's default (pickle.loads): msgpack unless the caller names another
        super().__init__(address, deserializer=deserializer, **kwargs)
        self.dropped = 0
        self.last_drop: str | None = None

    async def _poll(self) -> None:
        while True:
            if self._socket is None:  # only start() runs _poll, once it opened the socket
                raise ServiceError("the dispatcher polled before start() opened its socket")
            message = await self._socket.recv()
            try:
                parsed = self._parse(message)
            except Exception as err:
                self._drop(len(message), err)
                continue
            if parsed is not None:
                self.loop.call_soon(self._dispatch, *parsed)

    def _parse(self, message: bytes) -> tuple[DocumentNames, dict[str, Any]] | None:
        prefix, name, payload = message.split(b" ", 2)
        if self._prefix and prefix != self._prefix:
            return None  # another publisher's messages
        text = name.decode("utf-8", errors="replace")
        if text not in DocumentNames.__members__:
            raise ValueError(f"unknown document name {text[:40]!r}")
        doc = self._deserializer(payload)
        if not isinstance(doc, dict):
            raise ValueError(f"a document must be a mapping, got {type(doc).__name__}")
        return DocumentNames[text], doc

    def _drop(self, size: int, err: Exception) -> None:
        self.dropped += 1
        self.last_drop = f"{type(err).__name__}: {str(err)[:200]}"
        if self.dropped <= 10 or self.dropped % 1000 == 0:
            logger.warning(
                "0MQ message of %d bytes dropped (%d so far): %s (a Publisher still using "
                "pickle? see deploy/: Publisher(..., serializer=msgpack_serializer))",
                size,
                self.dropped,
                self.last_drop,
            )

    def _dispatch(self, name: DocumentNames, doc: dict[str, Any]) -> None:
        try:
            self.process(name, doc)
        except Exception:
            logger.exception("a callback failed on a %s document", name.name)
