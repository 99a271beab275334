"""Delegated Proof of Stake: token holders vote for candidates, the elected producers take turns
producing blocks on a fixed slot clock, and a block is irreversible once more than two thirds of
the producers have built on it. Follows EOSIO (pre-Savanna) and Graphene (BitShares) where they
define a rule; docs/dpos-design.md lists every deviation and why.

    spec.py       DposSpec: slot time, schedule size, repetitions, voting and penalty parameters,
                  presets (default, eosio, graphene, tron)
    types.py      the block header and block, the signed operation (stake, unstake, register,
                  vote) and double-production evidence
    schedule.py   slot -> producer, missed slots, the election, the LIB (Graphene's rule)
    state.py      the state of a branch and the block transition
    chain.py      DposChain: block tree, fork choice (highest LIB, then longest), pools, builder
"""
