"""Tests of studio.accounts: teams, roles, quotas and budgets, sign-in lockouts."""
