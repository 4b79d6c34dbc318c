"""The accounts app in the admin: teams and members with their quotas (teams.py), and the
price table budgets are counted in (prices.py)."""

from studio.accounts.admin.prices import ModelPriceAdmin
from studio.accounts.admin.teams import MembershipAdmin, TeamAdmin

__all__ = ["MembershipAdmin", "ModelPriceAdmin", "TeamAdmin"]
