"""Start-up: `import chainrule`, `import chainrule.numpy`, `chainrule --help`, against a bare
Python and `import numpy`, as medians of 7 fresh processes.

    python benchmarks/startup.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

from _common import table, write


def timed(cmd: list[str], n: int = 7) -> float:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    py = sys.executable
    exe = shutil.which("chainrule") or os.path.join(os.path.dirname(py), "chainrule")
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import numpy": [py, "-c", "import numpy"],
        "import chainrule": [py, "-c", "import chainrule"],
        "import chainrule.numpy": [py, "-c", "import chainrule.numpy"],
        "import chainrule.nn": [py, "-c", "import chainrule.nn"],
        "chainrule --help": [exe, "--help"],
    }
    rows = [{"what": k, "seconds": timed(v)} for k, v in cases.items()]
    print(table(rows, ["what", "seconds"]))
    write("startup", rows)


if __name__ == "__main__":
    main()
