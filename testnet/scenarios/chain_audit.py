"""Re-validate a node's main chain from genesis, from outside, using only its API's headers.

The orchestrator does not trust a node's word that its chain is valid: it rebuilds each 80-byte
header from the fields the API returns, recomputes the hash, and checks linkage, proof of work,
the retarget rule and the median-time-past rule with the same consensus functions a node uses.
"""

from __future__ import annotations

from consensus import pow
from consensus.chain_spec import ChainSpec


def audit_headers(headers: list[dict], spec: ChainSpec) -> tuple[bool, str]:
    """(valid, reason) for main-chain headers ordered by height from 0."""
    if not headers:
        return False, "no headers"
    genesis = spec.genesis_block()
    if headers[0]["hash"] != pow.hash_hex(genesis.hash):
        return False, f"height 0 is {headers[0]['hash'][:16]}, not this network's genesis"
    times: list[int] = []
    bits_at: list[int] = []
    for i, h in enumerate(headers):
        if h.get("height", i) != i:
            return False, f"header {i} reports height {h.get('height')}"
        raw = pow.serialize_header(h["version"], pow.hash_from_hex(h["prev_hash"]),
                                   pow.hash_from_hex(h["merkle_root"]), h["time"],
                                   int(h["bits"], 16), h["nonce"])
        block_hash = pow.header_hash(raw)
        if pow.hash_hex(block_hash) != h["hash"]:
            return False, f"height {i}: fields hash to {pow.hash_hex(block_hash)[:16]}, " \
                          f"not {h['hash'][:16]}"
        bits = int(h["bits"], 16)
        if i > 0:
            if h["prev_hash"] != headers[i - 1]["hash"]:
                return False, f"height {i}: prev_hash does not link to height {i - 1}"
            reason = spec.check_work(block_hash, bits)   # the hash rule, or sampled PoW's
            if reason:
                return False, f"height {i}: {reason}"
            expected = _expected_bits(i, bits_at, times, spec)
            if bits != expected:
                return False, f"height {i}: bits {bits:08x}, retargeting requires {expected:08x}"
            window = sorted(times[-spec.median_time_span:])
            mtp = window[len(window) // 2]
            if h["time"] <= mtp:
                return False, f"height {i}: time {h['time']} not above median time past {mtp}"
        times.append(h["time"])
        bits_at.append(bits)
    return True, f"{len(headers)} headers valid from genesis"


def _expected_bits(height: int, bits_at: list[int], times: list[int], spec: ChainSpec) -> int:
    if height % spec.retarget_window != 0:
        return bits_at[-1]
    first = max(0, (height - 1) - (spec.retarget_window - 1))
    return pow.next_bits(bits_at[-1], times[first], times[-1],
                         target_timespan=spec.target_timespan_s, pow_limit=spec.pow_limit)


def audit_pos_headers(headers: list[dict], genesis_root: str) -> tuple[bool, str]:
    """PoS main chain from outside: starts at this network's genesis, each block names the one
    before as parent, slots strictly increase. (Signatures and state transitions need the whole
    state; the nodes check those, the checkers compare what the nodes finalized.)"""
    if not headers:
        return False, "no headers"
    if headers[0]["hash"] != genesis_root:
        return False, f"height 0 is {headers[0]['hash'][:16]}, not this network's genesis"
    for i in range(1, len(headers)):
        h, prev = headers[i], headers[i - 1]
        if h["parent_root"] != prev["hash"]:
            return False, f"height {i}: parent_root does not link to height {i - 1}"
        if h["slot"] <= prev["slot"]:
            return False, f"height {i}: slot {h['slot']} not after slot {prev['slot']}"
    return True, f"{len(headers)} blocks link back to genesis with increasing slots"
