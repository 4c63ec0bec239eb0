"""Command-line tools for schema authors and CI (publish, check-events): never shipped in the Lambda zip."""
