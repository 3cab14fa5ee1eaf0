"""The codec: typed MessagePack behind a one-byte header, compressed above a threshold."""

from __future__ import annotations

import msgspec
import pytest
import zstandard

from shared.codec import MSGPACK, MSGPACK_ZSTD, Codec, CodecError, ValueTooLargeError

pytestmark = pytest.mark.unit


class Profile(msgspec.Struct, frozen=True):
    user_id: str
    display_name: str
    bio: str = ""


def test_a_value_round_trips_with_the_plain_header() -> None:
    codec = Codec(Profile)
    data = codec.encode(Profile("u1", "Ada"))
    assert data[0] == MSGPACK
    assert codec.decode(data) == Profile("u1", "Ada")


def test_a_value_above_the_threshold_is_compressed_and_reads_back() -> None:
    codec = Codec(Profile, compress_threshold=64)
    value = Profile("u1", "Ada", bio="hello " * 500)
    data = codec.encode(value)
    assert data[0] == MSGPACK_ZSTD
    assert len(data) < 500
    assert codec.decode(data) == value


def test_readers_accept_both_forms_whatever_their_own_threshold() -> None:
    value = Profile("u1", "Ada", bio="x" * 2000)
    compressed = Codec(Profile, compress_threshold=10).encode(value)
    plain = Codec(Profile, compress_threshold=10_000).encode(value)
    assert compressed[0] == MSGPACK_ZSTD and plain[0] == MSGPACK
    for reader in (Codec(Profile, compress_threshold=10), Codec(Profile, compress_threshold=10**6)):
        assert reader.decode(compressed) == reader.decode(plain) == value


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x10",
        b'{"user_id": "u1"}',  # foreign: JSON written by someone else
        b"\x10\xff\xff\xff",  # corrupt MessagePack
        b"\x11not zstd at all",  # corrupt compressed body
        b"\x99" + msgspec.msgpack.encode({"user_id": "u1", "display_name": "A"}),  # unknown header
        b"\x10" + msgspec.msgpack.encode({"something": "else"}),  # another schema
    ],
)
def test_corrupt_or_foreign_values_raise_a_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        Codec(Profile).decode(data)


def test_text_from_a_decoding_client_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        Codec(Profile).decode("\x10abc")


def test_a_value_over_the_maximum_size_is_refused_on_write() -> None:
    codec = Codec(Profile, max_size=256, compress_threshold=10_000)
    with pytest.raises(ValueTooLargeError):
        codec.encode(Profile("u1", "Ada", bio="x" * 300))


def test_a_compressed_value_that_inflates_past_the_maximum_is_refused_on_read() -> None:
    bomb = Codec(Profile, compress_threshold=0).encode(Profile("u1", "Ada", bio="x" * 100_000))
    assert len(bomb) < 1000
    with pytest.raises(ValueTooLargeError):
        Codec(Profile, max_size=10_000).decode(bomb)


def test_a_frame_without_declared_size_is_still_bounded() -> None:
    body = msgspec.msgpack.encode(Profile("u1", "Ada", bio="x" * 100_000))
    stream = zstandard.ZstdCompressor(write_content_size=False).compress(body)
    with pytest.raises(ValueTooLargeError):
        Codec(Profile, max_size=10_000).decode(b"\x11" + stream)


def test_an_unencodable_value_raises_a_codec_error() -> None:
    with pytest.raises(CodecError):
        Codec(object).encode(object())
