"""Pure consensus rules for p2p-testnet.

Everything here is deterministic: no asyncio, no sockets, no clock reads. Time and randomness come
in as arguments, so the same rules run under a real node, a simulated clock, or a property test.
"""
