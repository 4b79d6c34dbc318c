"""Tests of studio.gallery: the gallery, boards and the viewer."""
