"""The `tx` gossip topic, the same for both consensuses: decode, check the id, admit to the
mempool. Nonce and balance races around new blocks are normal (IGNORE); a bad signature, a
coinbase or a bad amount is the sender's fault (REJECT). The mempool's error says which by its
`Violation` (node/gossip_verdicts.py), never by its text.

Transactions are announced, not pushed, in batches of TX_ANNOUNCE_BATCH_S (p2p/gossip.py; as
Bitcoin trickles its `inv`s): in a full mesh, pushing made every node decode each transaction
from every peer, and the blocks waited behind those frames (issue 11). A transaction takes a
batch and a getdata round trip longer to spread; blocks take two seconds or more to come.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.errors import DecodeError, InvalidTransaction, Violation
from consensus.types import Transaction
from node.gossip_verdicts import rejected, rule_verdict
from p2p.gossip import GossipMessage, Verdict

TX_TOPIC = "tx"
TX_ANNOUNCE_BATCH_S = 0.1


def validate_transaction_message(msg: GossipMessage,
                                 admit: Callable[[Transaction], bytes]) -> Verdict:
    try:
        tx = Transaction.deserialize(msg.payload)
    except DecodeError as exc:
        # [REJECT] the payload is a transaction
        return rejected(f"malformed transaction: {exc}", exc.violation)
    # [REJECT] the announced id is the txid
    if tx.txid != msg.msg_id:
        return rejected("announced id does not match the txid", Violation.WRONG_ID)
    try:
        admit(tx)
    except InvalidTransaction as exc:
        # [IGNORE] nonce/balance races, duplicates, a full pool;
        # [REJECT] signature, coinbase, amounts
        return rule_verdict(f"invalid transaction: {exc}", exc.violation)
    return Verdict.accept()
