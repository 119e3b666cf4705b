"""What the ``ocpp-sansio`` command prints: one line per OCPP frame (readable or JSON), a
progress bar for load runs, and latency percentiles."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

#: Longest payload shown on a readable line; JSON lines always carry the whole payload.
READABLE_PAYLOAD = 160
_KINDS = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}


class FrameLog:
    """Prints frames as they cross, one line each, from several threads or tasks.

    A readable line reads ``12:00:01.250  CS1 -> CSMS  BootNotification {...}``; an answer
    names the action it answers (``BootNotification result``). ``json_lines`` prints one
    JSON object per frame instead (time, station, from, type, id, action, payload …).
    """

    def __init__(self, out: TextIO, *, json_lines: bool = False) -> None:
        self.out = out
        self.json_lines = json_lines
        self._lock = threading.Lock()
        self._closed = False
        #: (station, message id) -> action of a CALL not answered yet, to name answers.
        self._pending: dict[tuple[str, str], str] = {}

    def frame(self, station: str, sender: str, text: str) -> None:
        """A raw OCPP-J frame ``sender`` ("station" or "csms") sent, as on the wire."""
        try:
            frame = json.loads(text)
            kind = _KINDS[frame[0]]
            message_id = str(frame[1])
        except (ValueError, TypeError, KeyError, IndexError):
            self._emit(station, sender, "INVALID", None, None, text, None)
            return
        if kind in ("CALL", "SEND"):
            action = str(frame[2])
            payload = frame[3] if len(frame) > 3 else None
            if kind == "CALL":
                with self._lock:
                    self._pending[station, message_id] = action
            self._emit(station, sender, kind, message_id, action, payload, None)
            return
        with self._lock:
            answered = self._pending.pop((station, message_id), None)
        if kind == "CALLRESULT":
            payload = frame[2] if len(frame) > 2 else None
            self._emit(station, sender, kind, message_id, answered, payload, None)
        else:
            error = {
                "code": frame[2] if len(frame) > 2 else None,
                "description": frame[3] if len(frame) > 3 else None,
            }
            details = frame[4] if len(frame) > 4 else None
            self._emit(station, sender, kind, message_id, answered, details, error)

    def message(
        self,
        station: str,
        sender: str,
        kind: str,
        action: str,
        payload: Any,
        *,
        error: dict[str, Any] | None = None,
    ) -> None:
        """A frame known as a typed message rather than as text (no message id)."""
        self._emit(station, sender, kind, None, action, payload, error)

    def close(self) -> None:
        """Print nothing more: threads still running (the threads adapter's are daemons)
        must not write while the interpreter shuts down."""
        with self._lock:
            self._closed = True
            self.out.flush()

    def note(self, station: str, text: str) -> None:
        """Something that is not a frame: connected, refused, rebooting …"""
        with self._lock:
            if self._closed:
                return
            if self.json_lines:
                record = {"time": _timestamp(), "station": station, "note": text}
                self.out.write(json.dumps(record) + "\n")
            else:
                self.out.write(f"{_clock()}  {station}  {text}\n")
            self.out.flush()

    def _emit(
        self,
        station: str,
        sender: str,
        kind: str,
        message_id: str | None,
        action: str | None,
        payload: Any,
        error: dict[str, Any] | None,
    ) -> None:
        with self._lock:
            if self._closed:
                return
            if self.json_lines:
                record: dict[str, Any] = {
                    "time": _timestamp(),
                    "station": station,
                    "from": sender,
                    "type": kind,
                    "id": message_id,
                    "action": action,
                    "payload": payload,
                }
                if error is not None:
                    record["error"] = error
                self.out.write(json.dumps(record) + "\n")
            else:
                arrow = f"{station} -> CSMS" if sender == "station" else f"CSMS -> {station}"
                self.out.write(f"{_clock()}  {arrow}  {_describe(kind, action, payload, error)}\n")
            self.out.flush()


def _describe(kind: str, action: str | None, payload: Any, error: dict[str, Any] | None) -> str:
    name = action or "?"
    if kind == "CALLRESULT":
        name += " result"
    elif kind in ("CALLERROR", "CALLRESULTERROR"):
        assert error is not None
        label = "error" if kind == "CALLERROR" else "result refused"
        name += f" {label} {error['code']}: {error['description']}"
    elif kind == "INVALID":
        return f"unreadable frame {_shorten(str(payload))}"
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    if text in ("{}", "null"):
        return name
    return f"{name} {_shorten(text)}"


def _shorten(text: str) -> str:
    return text if len(text) <= READABLE_PAYLOAD else text[: READABLE_PAYLOAD - 3] + "..."


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Progress:
    """A one-line progress bar on a terminal, or a line every ``every`` updates elsewhere."""

    def __init__(self, out: TextIO, total: int, *, width: int = 30) -> None:
        self.out = out
        self.total = max(total, 1)
        self.width = width
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._last = ""

    def show(self, done: int, detail: str) -> None:
        filled = self.width * min(done, self.total) // self.total
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {done}/{self.total} {detail}"
        if line == self._last:
            return
        self._last = line
        if self.tty:
            self.out.write("\r" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def percentiles(samples: Sequence[float], points: Sequence[float]) -> list[float]:
    """Nearest-rank percentiles of ``samples`` (NaN when there are none)."""
    if not samples:
        return [math.nan for _ in points]
    ordered = sorted(samples)
    out = []
    for point in points:
        rank = max(1, math.ceil(point / 100 * len(ordered)))
        out.append(ordered[rank - 1])
    return out
