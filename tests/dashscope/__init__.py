"""Tests of studio.dashscope: the provider's catalog, rules, client and smoke check."""
