"""The event log and what reads it: the records, webhook signing, URL checks, delivery."""
