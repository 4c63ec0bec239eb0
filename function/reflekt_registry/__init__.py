"""reflekt-registry: validate Segment SDK traffic against Reflekt schemas and route it to two Segment sources."""

__version__ = "0.1.0"
