"""A simulated third-party payment provider (charges, deterministic outcomes, signed callbacks)."""
