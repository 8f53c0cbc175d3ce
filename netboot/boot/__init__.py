"""The pure boot-decision core: who is asking (classify), what they get (decide), and the reply packet.

Nothing here touches sockets, files or the clock; the DHCP service feeds it packets and facts and sends
what it returns. The table-driven tests in ``tests/boot`` are the specification.
"""
