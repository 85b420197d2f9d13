"""The compiled part of the build (metadata and everything else live in pyproject.toml).

The in-memory reuse store's event loop is C (service/_reuse_native.c); gcc and the Python
headers are all it needs. It is declared here rather than in pyproject.toml because
setuptools still calls its pyproject form of extension modules experimental.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "service._reuse_native",
            sources=["service/_reuse_native.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
