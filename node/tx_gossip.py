"""The `tx` gossip topic, the same for both consensuses: decode, check the id, admit to the
mempool. Nonce and balance races around new blocks are normal (IGNORE); a bad signature, a
coinbase or a bad amount is the sender's fault (REJECT)."""

from __future__ import annotations

from collections.abc import Callable

from consensus.errors import DecodeError, InvalidTransaction
from consensus.types import Transaction
from node.mempool import MempoolFull
from p2p.gossip import GossipMessage, Verdict

TX_TOPIC = "tx"


def validate_transaction_message(msg: GossipMessage,
                                 admit: Callable[[Transaction], bytes]) -> Verdict:
    try:
        tx = Transaction.deserialize(msg.payload)
    except DecodeError as exc:
        return Verdict.reject(f"malformed transaction: {exc}")
    # [REJECT] the announced id is the txid
    if tx.txid != msg.msg_id:
        return Verdict.reject("announced id does not match the txid")
    try:
        admit(tx)
    except MempoolFull as exc:
        return Verdict.ignore(str(exc))
    except InvalidTransaction as exc:
        reason = str(exc)
        # [IGNORE] nonce/balance races are normal around new blocks; bad signatures are not
        if "signature" in reason or "coinbase" in reason or "amount" in reason:
            return Verdict.reject(f"invalid transaction: {reason}")
        return Verdict.ignore(reason)
    return Verdict.accept()
