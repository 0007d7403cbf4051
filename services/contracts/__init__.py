"""The published language: event payloads every service agrees on, versioned by type name."""
