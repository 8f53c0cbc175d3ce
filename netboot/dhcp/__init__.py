"""DHCP server logic: the lease pool and the per-message rules of full and proxy mode (no sockets)."""
