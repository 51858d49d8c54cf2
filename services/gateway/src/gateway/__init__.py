"""gateway: the authorization service Envoy ext_authz calls for every merchant request."""
