"""Typed values as bytes for Redis: msgspec MessagePack behind a one-byte header.

The header names the codec (high nibble) and the compression (low nibble)::

    0x10  MessagePack, plain
    0x11  MessagePack, zstd-compressed

Values larger than ``compress_threshold`` are compressed with zstd. Readers accept both forms
whatever their own threshold is, so a threshold can change during a rolling deploy. Anything
else (a foreign value, a truncated or corrupt one, a value of another schema) raises
:class:`CodecError`; the cache treats that as a miss, never a crash.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

import msgspec
import zstandard

T = TypeVar("T")

MSGPACK: Final = 0x10
"""Header of a plain MessagePack value."""
MSGPACK_ZSTD: Final = 0x11
"""Header of a zstd-compressed MessagePack value."""

DEFAULT_COMPRESS_THRESHOLD: Final = 1024
DEFAULT_MAX_SIZE: Final = 1024 * 1024


class CodecError(ValueError):
    """A value cannot be encoded or decoded: corrupt, foreign, of another schema or too large."""


class ValueTooLargeError(CodecError):
    """A value exceeds the codec's maximum size (encoded, or once decompressed)."""


class Codec(Generic[T]):
    """Encode and decode values of one type.

    >>> class Point(msgspec.Struct):
    ...     x: int
    ...     y: int
    >>> codec = Codec(Point)
    >>> codec.decode(codec.encode(Point(1, 2)))
    Point(x=1, y=2)

    ``max_size`` bounds both the stored (possibly compressed) bytes and the decompressed
    payload, so a hostile value cannot make a reader allocate without limit.
    """

    __slots__ = ("_decoder", "_encoder", "_zc", "_zd", "compress_threshold", "max_size", "type")

    def __init__(
        self,
        type_: type[T],
        *,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
        max_size: int = DEFAULT_MAX_SIZE,
        level: int = 3,
    ) -> None:
        if compress_threshold < 0 or max_size <= 0:
            raise ValueError("compress_threshold must be >= 0 and max_size > 0")
        self.type = type_
        self.compress_threshold = compress_threshold
        self.max_size = max_size
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(type_)
        # zstd contexts are not thread-safe but are reusable; one per codec avoids
        # re-allocating them on every call (asyncio code runs on one thread).
        self._zc = zstandard.ZstdCompressor(level=level)
        self._zd = zstandard.ZstdDecompressor()

    def encode(self, value: T) -> bytes:
        """Serialize ``value`` with its header; compress it when larger than the threshold."""
        try:
            body = self._encoder.encode(value)
        except (TypeError, msgspec.EncodeError) as e:
            raise CodecError(f"cannot encode {type(value).__name__}: {e}") from e
        if len(body) > self.compress_threshold:
            if len(body) > self.max_size:
                raise ValueTooLargeError(f"value of {len(body)} bytes exceeds {self.max_size}")
            packed = self._zc.compress(body)
            # Incompressible data stays plain: readers pay for decompression only when it helps.
            if len(packed) < len(body):
                return bytes((MSGPACK_ZSTD,)) + packed
        if len(body) + 1 > self.max_size:
            raise ValueTooLargeError(f"value of {len(body)} bytes exceeds {self.max_size}")
        return bytes((MSGPACK,)) + body

    def decode(self, data: bytes | bytearray | memoryview | str) -> T:
        """Read a value written by any :class:`Codec` of this type, compressed or not."""
        if isinstance(data, str):
            raise CodecError("got text: the client must not decode responses")
        if len(data) < 2:
            raise CodecError("value too short to carry a header")
        if len(data) > self.max_size + 1:
            raise ValueTooLargeError(f"stored value of {len(data)} bytes exceeds {self.max_size}")
        header = data[0]
        body = memoryview(data)[1:]
        if header == MSGPACK_ZSTD:
            body = memoryview(self._decompress(body))
        elif header != MSGPACK:
            raise CodecError(f"unknown codec header 0x{header:02x}")
        try:
            return self._decoder.decode(body)
        except msgspec.DecodeError as e:
            raise CodecError(f"corrupt or foreign value: {e}") from e

    def _decompress(self, body: memoryview) -> bytes:
        try:
            # A frame that declares its size is allocated at that size: refuse a hostile one
            # up front. One that does not is streamed, reading at most one byte past the limit.
            declared = zstandard.frame_content_size(body)
            if declared > self.max_size:
                raise ValueTooLargeError(f"compressed value declares {declared} bytes")
            if declared < 0:  # -1: the size is not in the frame header
                with self._zd.stream_reader(body) as reader:
                    out: bytes = reader.read(self.max_size + 1)
            else:
                out = self._zd.decompress(body)
        except zstandard.ZstdError as e:
            raise CodecError(f"corrupt compressed value: {e}") from e
        if len(out) > self.max_size:
            raise ValueTooLargeError(f"decompressed value exceeds {self.max_size}")
        return out
