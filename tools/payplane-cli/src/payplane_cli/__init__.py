"""The ``payplane`` command."""
