"""Stake-weighted proposer selection (consensus-specs phase0 `compute_proposer_index`).

Algorithm. The seed of a slot is SHA-256("p2p-testnet/proposer" || epoch || mix || slot), where mix
is the randao mix at the end of epoch `epoch - 2` (phase0's MIN_SEED_LOOKAHEAD): fixed one full
epoch before the slot's epoch starts, so no proposer of the epoch itself can grind it. From the
seed, draw h_k = SHA-256(seed || k) for k = 0, 1, 2, ...; each draw proposes the candidate
`active[u64(h_k[0:8]) mod n]` and accepts it when `u64(h_k[8:16]) * max_stake < stake << 64`, i.e.
with probability stake / max_stake. Rejection sampling over a uniform candidate makes validator i
win with probability stake_i / sum(stakes), whatever the stake distribution; the expected number of
draws is max_stake * n / sum(stakes).

Differences from phase0, on purpose: the candidate is drawn with `mod n` instead of a swap-or-not
shuffle (the bias is n / 2^64), and acceptance uses 8 random bytes instead of one, so frequencies
match stake shares exactly rather than to within 1/256 of max stake.

Only validators active in the slot's epoch (and with stake) are candidates. Slashing ejects a
validator at the next epoch boundary, so from then on it is never selected; the selection stays a
function of the epoch (a validator slashed mid-epoch keeps its slots, but its blocks are rejected).
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.pos.state import (
    EPOCHS_PER_HISTORICAL_VECTOR,
    MIN_SEED_LOOKAHEAD,
    PosState,
    get_active_validator_indices,
    get_current_epoch,
    get_randao_mix,
)
from consensus.pos.types import sha256

DOMAIN_PROPOSER = b"p2p-testnet/proposer"
DOMAIN_ATTESTER = b"p2p-testnet/attester"


def get_seed(state: PosState, epoch: int, domain: bytes) -> bytes:
    """Seed of `epoch` for `domain`, from the randao mix as it stood at the end of epoch - 2."""
    mix = get_randao_mix(state, epoch + EPOCHS_PER_HISTORICAL_VECTOR - MIN_SEED_LOOKAHEAD - 1)
    return sha256(domain + epoch.to_bytes(8, "little") + mix)


def compute_proposer_index(indices: Sequence[int], stakes: Sequence[int], seed: bytes) -> int:
    """One of `indices`, chosen with probability proportional to its stake (see module doc)."""
    n = len(indices)
    max_stake = max(stakes, default=0)
    if n == 0 or max_stake <= 0:
        raise ValueError("no validator with stake to propose")
    k = 0
    while True:
        draw = sha256(seed + k.to_bytes(8, "little"))
        candidate = int.from_bytes(draw[:8], "little") % n
        if int.from_bytes(draw[8:16], "little") * max_stake < stakes[candidate] << 64:
            return indices[candidate]
        k += 1


def get_beacon_proposer_index(state: PosState, slot: int) -> int:
    """The proposer of `slot`; `state` must be in the slot's epoch (any slot of it)."""
    epoch = slot // state.spec.slots_per_epoch
    if epoch != get_current_epoch(state):
        raise ValueError(f"slot {slot} is not in the epoch of a state at slot {state.slot}")
    validators = state.validators
    indices = [i for i in get_active_validator_indices(state, epoch)
               if validators[i].effective_stake > 0]
    seed = sha256(get_seed(state, epoch, DOMAIN_PROPOSER) + slot.to_bytes(8, "little"))
    return compute_proposer_index(indices, [validators[i].effective_stake for i in indices], seed)
