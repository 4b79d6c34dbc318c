"""Real worker clusters, web processes, the image's commands and `make run`'s script.

Every test here is marked `slow`; `pytest -m "not slow"` leaves them out."""
