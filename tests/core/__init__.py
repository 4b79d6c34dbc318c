"""Tests of studio.core: home, health, the demo data, and every page in the browser."""
