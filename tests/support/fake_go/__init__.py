"""A strict fake of goneonize, neonize 0.5.2's Go library, over the simulated WhatsApp.

``FakeGoLibrary`` has the exports the engine calls (``Neonize``, ``Stop``, ``Disconnect``,
``Logout``, ``PairPhone``, ``SendMessage``, ``GetVersion``), takes their arguments the way
the ctypes functions do (checked against neonize's own ``argtypes``; buffers are read
through their pointers for the given sizes) and returns what those functions return
after neonize's ``errcheck`` hooks (``bytes``). ``NeonizeFfi(lib=FakeGoLibrary(url))``
drives it; everything else (protobuf classes, ctypes callback types) stays real.

Its "WhatsApp server" is the sim's device stream (``wafleet.sim.wire``), dialled with a
synchronous websockets client. Frames become what whatsmeow + goneonize would do:

- Callbacks come the way goneonize makes them: QR codes, QR-loop statuses and events on
  the thread that called ``Neonize``; events as real pointers to serialized neonize
  protobufs and their size, NULL and 0 for an empty message; code 0 (own Device) first
  when the event pump starts; the pump waits for each callback to return.
- Inbound messages: queued in a 100-slot channel, acknowledged to the sim (``ack``, the
  receipt) as soon as they are queued, before Python sees them; ``Stop`` cancels the
  pump and what is still queued is lost (``ClientStats.lost``).
- Unlocked Go maps (``_GoMaps``): ``Neonize`` writes them from its start until the client
  is registered, ``Stop`` at its end; every other export reads them at its start, and the
  client thread reads them when its QR loop ends. Any access overlapping a write prints
  ``fatal error: concurrent map read and map write`` and ends the process (exit 2).
- After a QR timeout ``Neonize`` never returns (``FetchMe`` waits for a device id);
  ``Stop`` before the event pump ends the QR loop, and ``FetchMe`` then dies of a nil
  pointer dereference, like the real library.
- Every ``Neonize`` that returns keeps its sqlite store handle open (``leaked_stores``).
- ``Disconnect`` waits for a dial in progress; the stream closing without a final frame
  gives ``Disconnected`` and whatsmeow's auto-reconnect; ``stream_replaced``,
  ``client_outdated``, ``temp_ban``, ``logged_out`` end the stream with no
  ``Disconnected``; keepalive failures for ``keepalive_max_fail`` force a reconnect with
  no ``Disconnected`` (a new ``Connected`` follows).
- Unknown client ids answer what the shipped library answers ("client is nil", ...).
- ``die()`` ends the process as a Go fatal error; so does an inbound message whose text
  is ``fatal_text``.

The session file keeps the sim credentials in table ``fake_go_device``, and after pairing
a row in ``whatsmeow_device`` (whatsmeow's own schema), so that "does this file hold a
linked device" reads the same for real and fake stores.

The parts, each modelling one side of the real library:

- ``library``: ``FakeGoLibrary``, the exports, and ``load_from_env`` for engine workers;
- ``runtime``: Go's fatal errors and goneonize's unlocked maps;
- ``convert``: ctypes arguments as goneonize reads them, the sim's JIDs, times and URL;
- ``config``: ``FakeGoTiming``, ``ClientStats``, versions, limits and stock error texts;
- a client, one layer on the next: ``channels`` (its state, the event and QR channels),
  ``store`` (the session's sqlite store), ``stream`` (the socket to the sim, waiting
  requests), ``frames`` (what each server frame does), ``requests`` (logout, pairing
  code, send) and ``client`` (``Neonize``'s own thread: QR loop, ``FetchMe``, event pump).
"""

from __future__ import annotations

from support.fake_go.config import (
    CHANNEL_SLOTS,
    FATAL_TEXT_ENV,
    GO_VERSION,
    NOT_LOGGED_IN,
    PAIR_NIL,
    SIM_URL_ENV,
    ClientStats,
    FakeGoTiming,
)
from support.fake_go.library import FakeGoLibrary, load_from_env
from support.fake_go.runtime import MAP_FATAL, MAP_WRITES_FATAL, NIL_PANIC, go_fatal
from support.fake_go.store import WHATSMEOW_DEVICE_SCHEMA

__all__ = [
    "CHANNEL_SLOTS",
    "FATAL_TEXT_ENV",
    "GO_VERSION",
    "MAP_FATAL",
    "MAP_WRITES_FATAL",
    "NIL_PANIC",
    "NOT_LOGGED_IN",
    "PAIR_NIL",
    "SIM_URL_ENV",
    "WHATSMEOW_DEVICE_SCHEMA",
    "ClientStats",
    "FakeGoLibrary",
    "FakeGoTiming",
    "go_fatal",
    "load_from_env",
]
