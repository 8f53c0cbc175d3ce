"""The QEMU/netns lab behind ``netboot lab``: see :mod:`netboot.lab.core` and docs/lab.md."""
