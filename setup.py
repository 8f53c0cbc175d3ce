"""Only the C part of netboot; everything else is declared in pyproject.toml.

``netboot.servers._tftp_fast`` is the TFTP download fast path (see its source for why and for the
contract it keeps with the Python transport). It is optional: without a C compiler or Python headers
the build goes on, and the TFTP server runs the same protocol in pure Python, only slower (it says so in
its start-up log). ``make run`` and ``make test`` install gcc and the headers, so they always build it.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "netboot.servers._tftp_fast",
            ["netboot/servers/_tftp_fast.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ]
)
