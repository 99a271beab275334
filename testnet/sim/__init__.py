"""The simulation backend (issue 14): our node code on a virtual-time loop and an in-memory network.

`loop.py` is the virtual-time event loop, `network_model.py` the latency/bandwidth model of the
links (regions and link profiles) that p2p/memory_transport.py's MemoryNetwork consults.
"""
