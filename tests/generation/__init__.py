"""Tests of studio.generation: the forms, jobs and their pages, the admin's reports."""
