"""Builds the optional C kernels (chainrule/_kernels.c); everything else is in
pyproject.toml. Where no compiler is found the build goes on without them, and chainrule
uses its NumPy code instead."""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-math-errno"]
setup(ext_modules=[Extension("chainrule._kernels", ["src/chainrule/_kernels.c"],
                             extra_compile_args=flags, optional=True)])
