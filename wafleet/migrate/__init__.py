"""Legacy migration: a Baileys 7 auth state becomes a neonize/whatsmeow session store.

The device resumes as the same linked device, with no new QR scan. Modules, one job each:

- ``baileys`` reads a ``useMultiFileAuthState`` folder or the legacy ``files`` map into an
  ``AuthState`` (``baileys_model``); ``baileys_parse`` and ``node_session`` parse each file,
  ``bufferjson`` decodes Baileys' values;
- ``signal_convert`` turns libsignal-node sessions and Baileys sender keys into the Go JSON
  libsignal-go reads, and ``signal_validate`` checks every such row the way libsignal-go loads
  it, so that none can panic whatsmeow;
- ``device``, ``signal_tables`` and ``tables`` map the creds and the key files to whatsmeow
  rows (``jids`` formats JIDs and Signal addresses as whatsmeow does), with a ``report`` part
  each;
- ``whatsmeow_store`` writes the rows, atomically, into the schema the shipped library created
  itself (``store_schema``);
- ``convert`` does one account (``errors.Unconvertible`` when it cannot); ``verify`` checks a
  written store offline: neonize loads it in a child process (``neonize_probe``), keys and
  XEdDSA signatures (``xeddsa``) are checked.
"""
