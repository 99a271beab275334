"""Hybrid PoW + PoS: Casper FFG finality over the Bitcoin-exact Proof-of-Work chain, following
EIP-1011 (Hybrid Casper FFG) and its contract `simple_casper.v.py` where they define a rule.

Blocks are mined by work (consensus/pow_chain.py, unchanged); a staked validator set votes on a
checkpoint every `epoch_length` blocks; what two thirds of the deposits justify twice in a row is
finalized and is never reverted, whatever the work of a competing branch.

    spec.py         HybridSpec: the PoW ChainSpec plus EIP-1011's parameters
    types.py        the vote, vote-slashing evidence, the Casper body, the hybrid block
    state.py        the Casper state of a block (the contract's storage)
    casper.py       the transition: initialize_epoch, vote, slash, deposit, logout, withdraw
    fork_choice.py  EIP-1011's score and the finality rule
    chain.py        HybridChain: PowChain with the Casper transition and that fork choice
    operations.py   gossip verdicts, the slashing detector and the pool
    builder.py      mining templates with a Casper body; signing votes

docs/hybrid-design.md lists every deviation from EIP-1011 and why.
"""
