"""The payplane operator (kopf): Merchant, Provider and Plan resources → the platform."""
