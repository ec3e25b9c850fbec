"""The HTTP API (and the reference page) of the web gateway, over the NATS API (issue 15)."""
