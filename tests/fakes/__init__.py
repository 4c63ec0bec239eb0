"""Loopback fakes of the systems the registry talks to, behaving like the real ones."""
