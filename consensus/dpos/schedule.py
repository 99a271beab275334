"""The producer schedule, the election and irreversibility, as pure functions.

Slot -> producer (EOSIO pre-Savanna, `block_header_state::get_scheduled_producer`):
    index = (slot // repetitions) % len(schedule)
Slots count from genesis on a fixed clock, so every producer has `repetitions` consecutive slots
in schedule order, and a slot nobody filled stays empty: the next producer builds on the head.

Election (EOSIO `system_contract::update_elected_producers`): candidates ranked by total votes,
where each voter gives its whole stake to every candidate it names; the top `producers` form the
next schedule, sorted by key (EOSIO sorts the elected by account name). Ties are broken
deterministically: a current producer ranks before a newcomer with equal votes (so a network
without votes keeps its genesis schedule), then the lower key. Slashed candidates never rank.

Irreversibility: Graphene's rule (`database::update_last_irreversible_block`,
libraries/chain/db_update.cpp): each producer of the active schedule has the height of the last
block it produced on this branch; sorted ascending, the value at offset
`(100% - 70%) * N / 100%` is the last irreversible block. The threshold here is the issue's
"more than 2/3": a block is irreversible when `floor(2N/3) + 1` producers have built on it (a
producer builds on its own block). That is Graphene's offset for N = 21 (15 of 21) and every
N <= 12 (5 of 7, 3 of 3); for some other N (13, 16, 19, 22, ...) Graphene's 70% asks one
producer more. EOSIO's two-stage rule
(`dpos_proposed_irreversible_blocknum`, then `dpos_irreversible_blocknum`) would roughly double
the head-to-LIB gap; docs/dpos-design.md derives both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def get_scheduled_producer(schedule: Sequence[bytes], slot: int, repetitions: int) -> bytes:
    """The producer whose turn `slot` is."""
    return schedule[(slot // repetitions) % len(schedule)]


def get_irreversible_threshold(producers: int) -> int:
    """How many producers must have built on a block for it to be irreversible: more than 2/3."""
    return producers * 2 // 3 + 1


def compute_lib_height(schedule: Sequence[bytes], last_produced: Mapping[bytes, int]) -> int:
    """The highest block height that `floor(2N/3)+1` producers of `schedule` have built on:
    the threshold-th highest of their last produced heights (0 for one that never produced)."""
    heights = sorted((last_produced.get(p, 0) for p in schedule), reverse=True)
    return heights[get_irreversible_threshold(len(schedule)) - 1]


def count_missed_slots(schedule: Sequence[bytes], repetitions: int, first_slot: int,
                       end_slot: int) -> dict[bytes, int]:
    """Slots in [first_slot, end_slot) charged to the producers they belonged to: whole rounds
    arithmetically, the rest slot by slot (a gap of hours costs no more than one round)."""
    missed: dict[bytes, int] = {}
    gap = max(0, end_slot - first_slot)
    round_slots = len(schedule) * repetitions
    full_rounds, rest = divmod(gap, round_slots)
    if full_rounds:
        for producer in schedule:
            missed[producer] = missed.get(producer, 0) + full_rounds * repetitions
    start = first_slot + full_rounds * round_slots
    for slot in range(start, start + rest):
        producer = get_scheduled_producer(schedule, slot, repetitions)
        missed[producer] = missed.get(producer, 0) + 1
    return missed


def vote_weight(stake: int, vote_slot: int, doubling_slots: int) -> int:
    """A vote's weight: its stake, or with EOSIO's time weighting (`stake2vote`: the stake times
    2^(weeks since 2000 / 52), so a vote cast later counts more and voters refresh their votes)
    the stake doubled every `doubling_slots` slots since genesis. 0 turns the weighting off. The
    power is a float, as EOSIO's `std::pow`; IEEE-754 makes it the same on every node."""
    if not doubling_slots:
        return stake
    return int(stake * 2.0 ** (vote_slot / doubling_slots))


def tally_votes(votes: Mapping[bytes, Iterable[bytes]], stakes: Mapping[bytes, int],
                vote_slots: Mapping[bytes, int] | None = None, doubling_slots: int = 0
                ) -> dict[bytes, int]:
    """Total votes per candidate: each voter's full weight for every candidate it names."""
    totals: dict[bytes, int] = {}
    for voter, candidates in votes.items():
        weight = vote_weight(stakes.get(voter, 0), (vote_slots or {}).get(voter, 0),
                             doubling_slots)
        for candidate in candidates:
            totals[candidate] = totals.get(candidate, 0) + weight
    return totals


def elect_producers(candidates: Iterable[bytes], totals: Mapping[bytes, int],
                    current: Sequence[bytes], size: int,
                    excluded: Iterable[bytes] = ()) -> tuple[bytes, ...]:
    """The next schedule: the top `size` eligible candidates by votes (current producers first on
    a tie, then the lower key), sorted by key. Fewer eligible candidates than `size` give a
    shorter schedule; none gives the current one (a chain never stops by election)."""
    banned = set(excluded)
    sitting = set(current)
    ranked = sorted((c for c in set(candidates) if c not in banned),
                    key=lambda c: (-totals.get(c, 0), c not in sitting, c))
    elected = ranked[:size]
    if not elected:
        return tuple(current)
    return tuple(sorted(elected))
