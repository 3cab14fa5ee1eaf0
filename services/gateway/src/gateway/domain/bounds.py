"""The largest integers the gateway accepts from clients: what the stores behind it can hold.

A number past these is answered ``invalid`` (422, or an ``invalid`` error frame) at the gateway,
instead of failing deep in a service (msgspec encodes at most 64-bit integers; chat keeps a
message's ``seq`` in an ``INTEGER`` column, 32 bits on PostgreSQL) as an internal error.
"""

from __future__ import annotations

from typing import Final

MAX_SEQ: Final = 2**31 - 1
"""The largest message sequence number: chat's ``seq``/``last_read_seq`` columns are INTEGER."""
