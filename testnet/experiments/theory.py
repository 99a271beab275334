"""The formulas an experiment's measurements are held against.

- Stale rate with block interval T and propagation delay d: 1 - exp(-d/T) (Decker and
  Wattenhofer 2013, "Information propagation in the Bitcoin network"; Gervais et al. 2016).
- Selfish mining: Eyal and Sirer 2014, "Majority is not enough", eq. (8):
  R(a, g) = [a(1-a)^2(4a + g(1-2a)) - a^3] / [1 - a(1 + (2-a)a)]; profitable above
  (1-g)/(3-2g) (1/3 at g = 0).
- Double spend: Nakamoto 2008, section 11 (Poisson approximation), and Rosenfeld 2014,
  "Analysis of hashrate-based double spending", eq. (1) (exact, negative binomial); with the
  race cut off D blocks behind (what an experiment must do), the same sum with the gambler's-ruin
  probability of reaching +1 before -D in place of (q/p)^(d+1).
"""

from __future__ import annotations

import math


def stale_rate(delay_s: float, interval_s: float) -> float:
    return 1 - math.exp(-delay_s / interval_s)


def selfish_revenue(alpha: float, gamma: float) -> float:
    a, g = alpha, gamma
    return (a * (1 - a) ** 2 * (4 * a + g * (1 - 2 * a)) - a ** 3) / (1 - a * (1 + (2 - a) * a))


def selfish_threshold(gamma: float) -> float:
    return (1 - gamma) / (3 - 2 * gamma)


def nakamoto_double_spend(q: float, z: int) -> float:
    """Nakamoto's AttackerSuccessProbability(q, z)."""
    p = 1 - q
    if q >= p:
        return 1.0
    lam = z * q / p
    total = 1.0
    for k in range(z + 1):
        poisson = math.exp(-lam) * lam ** k / math.factorial(k)
        total -= poisson * (1 - (q / p) ** (z - k))
    return total


def rosenfeld_double_spend(q: float, z: int) -> float:
    """Rosenfeld's exact r(q, z) = 1 - sum_{m=0}^{z} C(m+z-1, m) (p^z q^m - q^z p^m)."""
    p = 1 - q
    if q >= p:
        return 1.0
    if z == 0:
        return 1.0
    return 1 - sum(math.comb(m + z - 1, m) * (p ** z * q ** m - q ** z * p ** m)
                   for m in range(z + 1))


def rosenfeld_double_spend_cutoff(q: float, z: int, give_up_behind: int) -> float:
    """Rosenfeld's r(q, z) for an attacker who gives up `give_up_behind` (D >= z) blocks behind.

    Rosenfeld's model: the attacker has pre-mined one block when the payment is sent; when the
    honest chain has its z-th block the attacker has found m more with probability
    C(m+z-1, m) p^z q^m, so it is d = z - m - 1 blocks behind (with d < 0 it has already won).
    From d >= 0 the lead (attacker +1 with q, honest +1 with p) reaches one ahead before D behind
    with probability ((q/p)^(d+1) - (q/p)^(D+1)) / (1 - (q/p)^(D+1)) (gambler's ruin); as
    D -> infinity that is Rosenfeld's a_d = (q/p)^(d+1) and the sum is r(q, z)."""
    if give_up_behind < z:
        raise ValueError(f"give_up_behind ({give_up_behind}) must be at least z ({z}): the "
                         "attacker would give up before the merchant has confirmed")
    if z == 0:
        return 1.0
    p = 1 - q
    if q <= 0:
        return 0.0
    ratio = q / p
    top = ratio ** (give_up_behind + 1)

    def catch_up(d: int) -> float:
        if ratio == 1:
            return (give_up_behind - d) / (give_up_behind + 1)
        return (ratio ** (d + 1) - top) / (1 - top)

    def chance(m: int) -> float:
        return math.comb(m + z - 1, m) * p ** z * q ** m

    behind = sum(chance(m) * catch_up(z - m - 1) for m in range(z))
    return behind + 1 - sum(chance(m) for m in range(z))
