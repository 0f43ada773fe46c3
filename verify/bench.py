"""``python -m verify.bench`` (speed ratios): runs :func:`verify.cli.bench.main`."""
import sys

from verify.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
