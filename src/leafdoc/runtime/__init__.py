"""The running process and its machine: stopping with the parent, the servers' logging, the CPU's int8 support."""
