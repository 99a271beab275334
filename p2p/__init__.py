"""p2p/: the peer-to-peer layer of the testnet. It carries bytes, not meaning.

node/ uses P2PHost (host.py) and the types re-exported here; see docs/p2p-interface.md.
Modules: wire (frames), handshake + identity (who is on the other end), connection (one
websocket), gossip + seen_cache (flooding), rpc (request/response), sync (catching up),
peer_score (penalties, bans), dialer (reconnect with backoff), link_shaper (fault injection:
per-peer block, delay, loss, duplicate, reorder, rate), errors.
"""

from p2p.errors import DecodeError, EncodeError, HandshakeError, P2PError, RequestError
from p2p.gossip import GossipMessage, Verdict
from p2p.host import LINK_BLOCKED_REASON, P2PHost, PeerInfo
from p2p.link_shaper import LinkRule, LinkShaper
from p2p.sync import ChainStatus, SyncSource
from p2p.wire import MAX_FRAME_BYTES, PROTOCOL_VERSION, decode_frame, encode_frame

__all__ = [
    "LINK_BLOCKED_REASON",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "ChainStatus",
    "DecodeError",
    "EncodeError",
    "GossipMessage",
    "HandshakeError",
    "LinkRule",
    "LinkShaper",
    "P2PError",
    "P2PHost",
    "PeerInfo",
    "RequestError",
    "SyncSource",
    "Verdict",
    "decode_frame",
    "encode_frame",
]
