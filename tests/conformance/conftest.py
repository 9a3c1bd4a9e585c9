"""Fixtures of the conformance tests."""
