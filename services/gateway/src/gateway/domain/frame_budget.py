"""How many frames one connection may send: a token bucket, in process (pure, no I/O).

Every client frame takes a token; tokens come back at ``rate`` per second up to ``burst``. A frame
without a token is refused: the first of a run is answered (``rate_limited`` with the time until
the next token), the rest are dropped quietly so a flood is not echoed; a client that sends
``burst`` more frames into a refusal is not listening and is closed. Counted in the process, not
in Redis: a frame costs no round trip, and a connection lives on one gateway anyway.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Admission(enum.Enum):
    """What to do with one client frame."""

    ACCEPT = "accept"
    REFUSE_AND_TELL = "refuse_and_tell"
    """Drop it and send one ``rate_limited`` error (the first refusal of a run)."""
    REFUSE = "refuse"
    """Drop it silently."""
    CLOSE = "close"
    """Drop it and close the connection: the client ignores the refusals."""


@dataclass(slots=True)
class FrameBudget:
    """A connection's frame budget: ``rate`` frames per second, ``burst`` at once."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float | None = field(default=None, init=False)
    refused: int = field(default=0, init=False)
    """Frames refused in a row."""

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def admit(self, now: float) -> Admission:
        """Take a token for a frame arriving at ``now`` (monotonic seconds), if there is one."""
        if self.stamp is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.refused = 0
            return Admission.ACCEPT
        self.refused += 1
        if self.refused == 1:
            return Admission.REFUSE_AND_TELL
        return Admission.CLOSE if self.refused > self.burst else Admission.REFUSE

    def retry_after(self) -> float:
        """Seconds until the next token, from the last frame."""
        return max(0.0, (1.0 - self.tokens) / self.rate)
