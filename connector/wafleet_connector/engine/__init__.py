"""The neonize engine: real WhatsApp (whatsmeow in Go, through neonize) in worker processes.

neonize's Go core keeps its clients in maps without locks and has no heap limit, so one
bad call or one runaway heap ends its whole process. The connector therefore never loads
it: it runs it in worker processes (``worker``) that it supervises (``supervisor``), and
talks to them in the frame protocol of ``wafleet.sim.wire``, the same one it speaks to
the simulated WhatsApp. Inside a worker, ``inprocess`` and ``session`` drive the Go core
through ``ffi``; ``mapping`` turns neonize's protobuf events into transport events.
"""
