"""One p2p-testnet node: consensus rules + p2p transport + SQLite store + HTTP API + events +
miner."""
