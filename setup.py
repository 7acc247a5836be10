"""Builds the optional C kernels (chainrule/_kernels.c); everything else is in
pyproject.toml. Where no compiler is found the build goes on without them, and chainrule
uses its NumPy code instead."""

import sys

from setuptools import Extension, setup

win = sys.platform == "win32"
flags = [] if win else ["-O3", "-ffp-contract=off", "-fno-math-errno", "-pthread"]
setup(ext_modules=[Extension("chainrule.engine._kernels", ["src/chainrule/engine/_kernels.c"],
                             extra_compile_args=flags, extra_link_args=[] if win else
                             ["-pthread"], optional=True)])
