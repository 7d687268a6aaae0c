"""Test helpers (fake provider HTTP servers come with the real providers)."""
