"""Teams, members, their quotas and budgets, and the price table budgets are counted in.

Each model lives in the module named for its part; they are all importable from here.
"""

from studio.accounts.models.prices import ModelPrice, money
from studio.accounts.models.quotas import (
    Period,
    QuotaCounter,
    QuotaCounterQuerySet,
    QuotaExceeded,
)
from studio.accounts.models.teams import Membership, Team, TeamQuerySet

__all__ = [
    "Membership",
    "ModelPrice",
    "Period",
    "QuotaCounter",
    "QuotaCounterQuerySet",
    "QuotaExceeded",
    "Team",
    "TeamQuerySet",
    "money",
]
