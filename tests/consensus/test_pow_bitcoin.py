"""`consensus.pow` against Bitcoin itself: real mainnet headers, and the vectors of Bitcoin Core's
src/test/arith_uint256_tests.cpp (bignum_SetCompact) and src/test/pow_tests.cpp (get_next_work*).

Real-block fields are the ones any block explorer shows; a header test can only pass if every field
and the hashing are right, since the expected hash is Bitcoin's.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import pow

BITCOIN_POW_LIMIT = 0x00000000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF
BITCOIN_TARGET_TIMESPAN_S = 14 * 24 * 3600
ZERO_HASH = b"\x00" * 32

# (height, version, prev_hash, merkle_root, time, bits, nonce, block hash), hashes as displayed.
MAINNET_HEADERS = [
    (0, 1, "00" * 32,
     "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
     1231006505, 0x1D00FFFF, 2083236893,
     "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"),
    (1, 1, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
     "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098",
     1231469665, 0x1D00FFFF, 2573394689,
     "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"),
    (2, 1, "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
     "9b0fc92260312ce44e74ef369f5c66bbb85848f2eddd5a7a1cde251e54ccfdd5",
     1231469744, 0x1D00FFFF, 1639830024,
     "000000006a625f06636b8bb6ac7b960a8d03705d1ace08b1a19da3fdcc99ddbd"),
    (170, 1, "000000002a22cfee1f2c846adbd12b3e183d4f97683f85dad08a79780a84bd55",
     "7dac2c5666815c17a3b36427de37bb9d2e2c5ccec3f8633eb91a4205cb4c10ff",
     1231731025, 0x1D00FFFF, 1889418792,
     "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"),
]

# The genesis coinbase ("The Times 03/Jan/2009 ...") as serialized on the wire.
GENESIS_COINBASE_RAW = bytes.fromhex(
    "01000000" "01" + "00" * 32 + "ffffffff" "4d"
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e2062"
    "72696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
    "ffffffff" "01" "00f2052a01000000" "43"
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e5"
    "1ec112de5c384df7ba0b8d578a4c702b6bf11d5fac" "00000000")

# Block 170: the coinbase and the first person-to-person payment (Satoshi to Hal Finney).
BLOCK_170_TXIDS = ["b1fea52486ce0c62bb442b530a3f0132b826c74e473d1f2c220bfa78111c5082",
                   "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"]


def header_bytes(version, prev_hex, merkle_hex, time, bits, nonce) -> bytes:
    return pow.serialize_header(version, pow.hash_from_hex(prev_hex), pow.hash_from_hex(merkle_hex),
                                time, bits, nonce)


# ---- headers and hashes --------------------------------------------------------------------------

@pytest.mark.parametrize("height, version, prev, merkle, time, bits, nonce, expected",
                         MAINNET_HEADERS, ids=[f"block-{h[0]}" for h in MAINNET_HEADERS])
def test_mainnet_header_hashes_to_its_block_hash(height, version, prev, merkle, time, bits, nonce,
                                                 expected):
    raw = header_bytes(version, prev, merkle, time, bits, nonce)
    assert len(raw) == pow.HEADER_BYTES
    assert pow.hash_hex(pow.header_hash(raw)) == expected
    assert pow.parse_header(raw) == (version, pow.hash_from_hex(prev), pow.hash_from_hex(merkle),
                                     time, bits, nonce)


@pytest.mark.parametrize("row", MAINNET_HEADERS, ids=[f"block-{h[0]}" for h in MAINNET_HEADERS])
def test_mainnet_block_meets_its_target_under_bitcoins_pow_limit(row):
    *fields, expected = row[1:]
    block_hash = pow.header_hash(header_bytes(*fields))
    assert pow.check_proof_of_work(block_hash, fields[4], BITCOIN_POW_LIMIT) is None


def test_genesis_fails_a_target_below_its_hash():
    genesis_hash = pow.hash_from_hex(MAINNET_HEADERS[0][-1])
    # 0x1a00ffff: ffff at bit 184, four hex digits below where the genesis hash starts
    assert pow.check_proof_of_work(genesis_hash, 0x1A00FFFF, BITCOIN_POW_LIMIT) == \
        "hash does not meet the target in bits"


def test_genesis_coinbase_txid_is_the_genesis_merkle_root():
    txid = pow.sha256d(GENESIS_COINBASE_RAW)
    assert pow.hash_hex(txid) == MAINNET_HEADERS[0][3]
    assert pow.merkle_root([txid]) == txid


def test_hash_hex_is_byte_reversed():
    h = bytes(range(32))
    assert pow.hash_hex(h) == bytes(range(31, -1, -1)).hex()
    assert pow.hash_from_hex(pow.hash_hex(h)) == h
    # the displayed genesis hash starts with zeros; internally those are the *last* bytes
    genesis = pow.hash_from_hex(MAINNET_HEADERS[0][-1])
    assert genesis.endswith(b"\x00" * 5) and genesis[0] == 0x6F


@pytest.mark.parametrize("text", ["00" * 31, "00" * 33, ""])
def test_hash_from_hex_rejects_wrong_length(text):
    with pytest.raises(ValueError):
        pow.hash_from_hex(text)


@pytest.mark.parametrize("length", [0, 79, 81])
def test_parse_header_rejects_wrong_length(length):
    with pytest.raises(ValueError):
        pow.parse_header(b"\x00" * length)


def test_serialize_header_rejects_short_hashes():
    with pytest.raises(ValueError):
        pow.serialize_header(1, b"\x00" * 31, ZERO_HASH, 0, 0, 0)
    with pytest.raises(ValueError):
        pow.serialize_header(1, ZERO_HASH, b"\x00" * 33, 0, 0, 0)


# ---- merkle root ---------------------------------------------------------------------------------

def test_merkle_root_of_block_170_pairs_its_two_txids():
    txids = [pow.hash_from_hex(t) for t in BLOCK_170_TXIDS]
    assert pow.hash_hex(pow.merkle_root(txids)) == MAINNET_HEADERS[3][3]


def test_merkle_root_duplicates_the_last_hash_of_an_odd_level():
    a, b, c = (hashlib.sha256(bytes([i])).digest() for i in range(3))
    expected = pow.sha256d(pow.sha256d(a + b) + pow.sha256d(c + c))
    assert pow.merkle_root([a, b, c]) == expected
    # Bitcoin's known consequence (CVE-2012-2459): repeating the last txid gives the same root
    assert pow.merkle_root([a, b, c, c]) == expected
    assert pow.merkle_root([a, b]) == pow.sha256d(a + b)
    assert pow.merkle_root([b, a]) != pow.merkle_root([a, b])


def test_merkle_root_of_five_duplicates_on_every_odd_level():
    h = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    d = pow.sha256d
    level1 = [d(h[0] + h[1]), d(h[2] + h[3]), d(h[4] + h[4])]
    level2 = [d(level1[0] + level1[1]), d(level1[2] + level1[2])]
    assert pow.merkle_root(h) == d(level2[0] + level2[1])


def test_merkle_root_of_nothing_is_zero_hash():
    assert pow.merkle_root([]) == ZERO_HASH


# ---- compact bits: arith_uint256_tests.cpp bignum_SetCompact ------------------------------------

# (compact, decoded target, GetCompact of the decoded target)
SET_COMPACT_VECTORS = [
    (0x00000000, 0, 0),
    (0x00123456, 0, 0),
    (0x01003456, 0, 0),
    (0x02000056, 0, 0),
    (0x03000000, 0, 0),
    (0x04000000, 0, 0),
    (0x00923456, 0, 0),       # sign bit set, but the mantissa shifts out to zero: not negative
    (0x01803456, 0, 0),
    (0x02800056, 0, 0),
    (0x03800000, 0, 0),
    (0x04800000, 0, 0),
    (0x01123456, 0x12, 0x01120000),
    (0x02123456, 0x1234, 0x02123400),
    (0x03123456, 0x123456, 0x03123456),
    (0x04123456, 0x12345600, 0x04123456),
    (0x05009234, 0x92340000, 0x05009234),
    (0x20123456, 0x123456 << 232, 0x20123456),
]


@pytest.mark.parametrize("compact, target, recompact", SET_COMPACT_VECTORS,
                         ids=[f"{v[0]:#010x}" for v in SET_COMPACT_VECTORS])
def test_set_compact_vectors(compact, target, recompact):
    assert pow.bits_to_target(compact) == target
    assert pow.target_to_bits(target) == recompact


@pytest.mark.parametrize("compact", [0x01FEDCBA, 0x04923456])
def test_set_compact_negative_raises(compact):
    with pytest.raises(ValueError, match="negative"):
        pow.bits_to_target(compact)


# 0xff123456 is Core's vector; the rest are the edges of Core's overflow rule
# (size > 34, or word > 0xff and size > 33, or word > 0xffff and size > 32).
@pytest.mark.parametrize("compact", [0xFF123456, 0x23000001, 0x22000100, 0x21010000])
def test_set_compact_overflow_raises(compact):
    with pytest.raises(ValueError, match="overflow"):
        pow.bits_to_target(compact)


@pytest.mark.parametrize("compact, target", [(0x220000FF, 0xFF << 248), (0x2100FFFF, 0xFFFF << 240),
                                             (0x207FFFFF, 0x7FFFFF << 232)])
def test_set_compact_largest_encodings_that_fit(compact, target):
    assert pow.bits_to_target(compact) == target


def test_get_compact_never_sets_the_sign_bit():
    # arith_uint256_tests.cpp: "Make sure that we don't generate compacts with the 0x00800000
    # bit set"
    assert pow.target_to_bits(0x80) == 0x02008000


def test_target_to_bits_rejects_negative():
    with pytest.raises(ValueError):
        pow.target_to_bits(-1)


@given(st.integers(min_value=0, max_value=(1 << 32) - 1))
def test_any_compact_decodes_below_2_256_or_raises(compact):
    try:
        target = pow.bits_to_target(compact)
    except ValueError:
        return
    assert 0 <= target < 1 << 256


@given(st.integers(min_value=0, max_value=(1 << 256) - 1))
def test_get_compact_rounds_down_and_is_stable(target):
    bits = pow.target_to_bits(target)
    assert bits & 0x00800000 == 0
    decoded = pow.bits_to_target(bits)
    assert decoded <= target
    # at least 15 significant bits survive the rounding
    assert (target - decoded) << 15 <= target
    assert pow.target_to_bits(decoded) == bits


# ---- retargeting: pow_tests.cpp get_next_work* ---------------------------------------------------

# (first block time of the window, last block time, last bits, expected next bits)
NEXT_WORK_VECTORS = [
    pytest.param(1261130161, 1262152739, 0x1D00FFFF, 0x1D00D86A, id="get_next_work"),
    pytest.param(1231006505, 1233061996, 0x1D00FFFF, 0x1D00FFFF, id="pow_limit"),
    pytest.param(1279008237, 1279297671, 0x1C05A3F4, 0x1C0168FD, id="lower_limit_actual"),
    pytest.param(1263163443, 1269211443, 0x1C387F6F, 0x1D00E1FD, id="upper_limit_actual"),
]


@pytest.mark.parametrize("first_time, last_time, last_bits, expected", NEXT_WORK_VECTORS)
def test_calculate_next_work_required(first_time, last_time, last_bits, expected):
    assert pow.next_bits(last_bits, first_time, last_time,
                         target_timespan=BITCOIN_TARGET_TIMESPAN_S,
                         pow_limit=BITCOIN_POW_LIMIT) == expected


@given(st.integers(min_value=-10**7, max_value=10**8))
def test_retarget_clamps_the_timespan_to_a_quarter_and_four_times(actual):
    t = BITCOIN_TARGET_TIMESPAN_S
    clamped = min(max(actual, t // 4), t * 4)
    common = dict(target_timespan=t, pow_limit=BITCOIN_POW_LIMIT)
    assert pow.next_bits(0x1C05A3F4, 0, actual, **common) == \
        pow.next_bits(0x1C05A3F4, 0, clamped, **common)


def test_retarget_never_exceeds_the_pow_limit():
    # four times the limit's own target, capped back to the limit
    assert pow.next_bits(0x1D00FFFF, 0, 10**9, target_timespan=BITCOIN_TARGET_TIMESPAN_S,
                         pow_limit=BITCOIN_POW_LIMIT) == 0x1D00FFFF


# ---- work and proof-of-work checks ---------------------------------------------------------------

def test_block_work_of_bitcoin_genesis():
    assert pow.block_work(0x1D00FFFF) == 0x100010001


def test_block_work_is_two_hashes_at_regtest_bits():
    assert pow.block_work(0x207FFFFF) == 2


@pytest.mark.parametrize("bits", [0, 0x01803456, 0x04923456, 0xFF123456])
def test_block_work_of_zero_negative_or_overflowing_bits_is_zero(bits):
    assert pow.block_work(bits) == 0


@given(st.integers(min_value=0x03000001, max_value=0x207FFFFF).filter(
    lambda b: not b & 0x00800000 and b & 0x007FFFFF))
def test_block_work_is_2_256_over_target_plus_one(bits):
    target = pow.bits_to_target(bits)
    assert pow.block_work(bits) == (1 << 256) // (target + 1)


def test_hash_equal_to_the_target_meets_it():
    bits = 0x1D00FFFF
    target = pow.bits_to_target(bits)
    at_target = target.to_bytes(32, "little")
    above = (target + 1).to_bytes(32, "little")
    assert pow.check_proof_of_work(at_target, bits, BITCOIN_POW_LIMIT) is None
    assert pow.check_proof_of_work(above, bits, BITCOIN_POW_LIMIT) == \
        "hash does not meet the target in bits"


@pytest.mark.parametrize("bits, reason", [
    (0x1D01FFFF, "outside the allowed range"),    # easier than Bitcoin's pow limit
    (0x00000000, "outside the allowed range"),    # zero target
    (0x04923456, "negative"),
    (0xFF123456, "overflow"),
])
def test_check_proof_of_work_rejects_bad_bits(bits, reason):
    assert reason in pow.check_proof_of_work(ZERO_HASH, bits, BITCOIN_POW_LIMIT)


# ---- nonce search --------------------------------------------------------------------------------

def genesis_header76() -> bytes:
    return header_bytes(*MAINNET_HEADERS[0][1:7])[:76]


def test_search_nonce_finds_satoshis_nonce():
    target = pow.bits_to_target(0x1D00FFFF)
    nonce = 2083236893
    assert pow.search_nonce(genesis_header76(), target, nonce - 1000, 2000) == nonce
    assert pow.search_nonce(genesis_header76(), target, nonce + 1, 1000) is None


def test_search_nonce_returns_the_first_winning_nonce_and_agrees_with_header_hash():
    prefix = genesis_header76()
    target = pow.bits_to_target(0x1F00FFFF)            # about one hash in 256 wins
    nonce = pow.search_nonce(prefix, target, 0, 1 << 16)
    assert nonce is not None

    def hash_of(n: int) -> int:
        return pow.hash_to_int(pow.header_hash(prefix + n.to_bytes(4, "little")))

    assert hash_of(nonce) <= target
    assert all(hash_of(n) > target for n in range(nonce))


def test_search_nonce_stops_at_the_end_of_the_nonce_space():
    prefix = genesis_header76()
    easiest = (1 << 256) - 1
    assert pow.search_nonce(prefix, easiest, (1 << 32) - 1, 10) == (1 << 32) - 1
    assert pow.search_nonce(prefix, easiest, 1 << 32, 10) is None
