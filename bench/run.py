"""Benchmark tconv against its peers on the suite of real layers: ``python bench/run.py --help``.

The same as ``tconv bench``; the logic lives in tconv/_bench.py so the installed command has it.
"""

import sys

from tconv._bench import main

if __name__ == "__main__":
    sys.exit(main())
