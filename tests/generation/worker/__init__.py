"""Tests of studio.generation.worker: the dispatcher, job steps, downloads, leases and
the cluster's life."""
