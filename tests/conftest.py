"""The suite runs in local mode, said explicitly: the settings' default is production."""

import os

os.environ["ENVIRONMENT"] = "local"
