"""``python -m verify.sweep``: runs :func:`verify.cli.sweep.main` (the API is :mod:`verify.sweeps`)."""
import sys

from verify.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
