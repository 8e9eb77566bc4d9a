"""Checks: each returns findings; none prints or exits."""
