"""merchants service: merchants, API keys, request-signing and webhook secrets, plan usage."""
