"""gRPC face of collaboration and its authorisation policy."""
