"""Notifications: what a person is told about (mentions, reviews, jobs that ended while she
was elsewhere, quotas and budgets running out), in the studio and by email digest."""
