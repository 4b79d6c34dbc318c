"""The provider layer: DashScope's model catalog, client and emulator.

A plain package (no models, no views), and the only code of the studio that talks to the
network.
"""
