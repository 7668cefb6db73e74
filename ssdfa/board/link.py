"""The host end of the UART link (docs/board.md §3): a transport (a serial port, or the simulated
cable of ``--sim verilator``) and ``Link``, which numbers requests, checks every reply and
retransmits what was lost.

Every failure the link cannot recover from is a ``LinkError``: one line that names the port and
what went wrong, which the command line prints with exit status 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssdfa.errors import SsdfaError

from . import frames
from .frames import Command, Status

__all__ = ["LinkError", "SerialTransport", "Hello", "Link"]


class LinkError(SsdfaError):
    """The link failed: a timeout, replies that never check, a refused request, a missing port."""


class SerialTransport:
    """A serial port through pyserial (8N1, no flow control)."""

    def __init__(self, port: str, baud: int):
        try:
            import serial
        except ImportError:
            raise LinkError("--port needs pyserial: pip install 'ssdfa[board]'") from None
        try:
            self._serial = serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=0)
        except (serial.SerialException, OSError, ValueError) as error:
            raise LinkError(f"cannot open serial port {port}: {getattr(error, 'strerror', None) or error}") from None
        self.name = port

    def write(self, data: bytes) -> None:
        self._serial.write(data)

    def read(self, count: int, timeout: float) -> bytes:
        self._serial.timeout = timeout
        return self._serial.read(count)

    def discard_input(self) -> None:
        self._serial.reset_input_buffer()

    def close(self) -> None:
        self._serial.close()


@dataclass(frozen=True)
class Hello:
    """What the bridge reports about itself (docs/board.md §2.2, HELLO)."""

    last_seq: int
    has_last: bool
    inputs: int
    feature_bytes: int
    classes: int
    map_version: int


class Link:
    """Numbered requests over a transport, one reply each (stop and wait).

    A reply that does not arrive within ``timeout`` seconds, or that arrives damaged, or a
    BAD_CRC reply, makes the link send the same request again with the same SEQ, at most
    ``retries`` times: the bridge carries a request out once and answers repeats from its record.

    Parameters
    ----------
    transport : SerialTransport or a transport with the same methods
    timeout : float
        Seconds to wait for a reply.
    retries : int
        Retransmissions of one request before the link gives up.
    next_seq : int, optional
        The SEQ of the next request (a resumed run passes the SEQ of its unacknowledged request);
        by default ``hello`` sets it past the bridge's last.
    """

    def __init__(self, transport, *, timeout: float = 2.0, retries: int = 3, next_seq: int | None = None):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.next_seq = next_seq
        self.retransmissions = 0
        #: (SEQ, command, payload) of the request in flight, kept when the link fails: a resumed
        #: run sends it again first (``resend``), so that the bridge answers it from its record.
        self.pending = None
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- frames ------------------------------------------------------------------------------------

    def _receive(self) -> frames.Reply | None:
        """One reply, or None if it did not come in time or did not decode."""
        transport = self.transport
        while True:
            first = transport.read(1, self.timeout)
            if not first:
                return None
            if first[0] == frames.SYNC_REPLY:
                break
        header = transport.read(3, self.timeout)
        if len(header) < 3:
            return None
        rest = transport.read(header[2] + 2, self.timeout)
        frame = first + header + rest
        self.bytes_received += len(frame)
        try:
            return frames.decode_reply(frame)
        except frames.FrameError:
            return None

    def exchange(self, command: Command, payload: bytes = b"", *, seq: int | None = None) -> frames.Reply:
        """Send one request and return its reply (status OK or not); retransmit what was lost.

        Raises
        ------
        LinkError
            No good reply after ``retries`` retransmissions.
        """
        if seq is None:
            if self.next_seq is None:
                raise LinkError("the link has no sequence number yet: say HELLO first")
            seq = self.next_seq
        frame = frames.encode_request(seq, command, payload)
        if command != Command.HELLO:
            self.pending = (seq, int(command), bytes(payload))
        problem = "no reply"
        for attempt in range(self.retries + 1):
            if attempt:
                self.retransmissions += 1
                self.transport.discard_input()
            self.transport.write(frame)
            self.bytes_sent += len(frame)
            reply = self._receive()
            if reply is None:
                problem = f"no valid reply within {self.timeout:g} s"
                continue
            if reply.status == Status.BAD_CRC:
                problem = "the board received the request damaged (BAD_CRC)"
                continue
            if reply.seq != seq:
                problem = f"a reply for SEQ {reply.seq} to request SEQ {seq}"
                continue
            if command != Command.HELLO:
                self.next_seq = (seq + 1) & 0xFF
                self.pending = None
            return reply
        raise LinkError(f"{self.transport.name}: {Command(command).name} request SEQ {seq} failed after "
                        f"{self.retries + 1} attempts: {problem}")

    def request(self, command: Command, payload: bytes = b"", *, seq: int | None = None) -> bytes:
        """``exchange``, then a LinkError unless the status is OK; returns the reply's payload."""
        reply = self.exchange(command, payload, seq=seq)
        if reply.status != Status.OK:
            name = Status(reply.status).name if reply.status in tuple(Status) else str(reply.status)
            raise LinkError(f"{self.transport.name}: the board refused {Command(command).name} "
                            f"request SEQ {reply.seq}: {name}")
        return reply.payload

    # -- commands ----------------------------------------------------------------------------------

    def hello(self) -> Hello:
        """Ask the bridge who it is; start numbering after its last SEQ unless resuming."""
        reply = self.exchange(Command.HELLO, seq=0)
        payload = reply.payload
        if reply.status != Status.OK or len(payload) != frames.HELLO_LENGTH:
            raise LinkError(f"{self.transport.name}: HELLO answered status {reply.status} with {len(payload)} bytes; "
                            "is this an ssdfa board?")
        hello = Hello(payload[0], bool(payload[1]), payload[2] | payload[3] << 8, payload[4], payload[5], payload[6])
        if self.next_seq is None:
            self.next_seq = (hello.last_seq + 1) & 0xFF
        return hello

    def read(self, address: int, count: int = 1) -> list[int]:
        """``count`` reads of one register (DATA reads consecutive learner words)."""
        words = []
        while count > 0:
            burst = min(count, frames.MAX_BURST_WORDS)
            payload = self.request(Command.READ, bytes([address >> 8, address & 0xFF, burst]))
            words += [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload), 4)]
            count -= burst
        return words

    def write(self, address: int, words) -> None:
        """Write ``words`` to one register, in frames of at most 63 words."""
        words = [int(w) & 0xFFFFFFFF for w in words]
        for start in range(0, len(words), frames.MAX_BURST_WORDS):
            burst = words[start:start + frames.MAX_BURST_WORDS]
            self.request(Command.WRITE, bytes([address >> 8, address & 0xFF])
                         + b"".join(w.to_bytes(4, "little") for w in burst))

    def sample(self, features: bytes, label: int) -> bytes:
        """Stream one sample; returns the predictions the reply carried (class indices)."""
        return self.request(Command.SAMPLE, bytes(features) + bytes([label]))

    def predictions(self) -> bytes:
        return self.request(Command.PREDICTIONS)
