"""The network, letter kinds and their allowlists, signatures: pure rules, no I/O."""
