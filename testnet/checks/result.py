"""What a checker answers: a verdict (valid / invalid / unknown, Jepsen's three), a message a
user can read, and the evidence behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Verdict = Literal["valid", "invalid", "unknown"]
VERDICTS: tuple[str, ...] = ("valid", "invalid", "unknown")
MAX_EVIDENCE_ITEMS = 10


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    message: str
    evidence: dict
    expected: Verdict | None = None

    @property
    def passed(self) -> bool:
        """The verdict is the one the scenario expected ("valid" when it named none)."""
        return self.verdict == (self.expected or "valid")

    def to_json(self) -> dict:
        out = asdict(self)
        if self.expected is None:
            del out["expected"]
        out["passed"] = self.passed
        return out


def result(name: str, verdict: Verdict, message: str, **evidence: Any) -> CheckResult:
    return CheckResult(name, verdict, message, evidence)
