"""The suite runs in local mode, said explicitly: the settings' default is production."""

import os

os.environ["ENVIRONMENT"] = "local"

# Shared fixtures: ``app_clock`` / ``clock``, a clock a test moves instead of sleeping.
pytest_plugins = ["tests.support.clock"]
