"""The web console: a server-rendered client of the services' gRPC APIs (issue 16)."""
