"""``python -m verify.all`` (every claim): runs :func:`verify.cli.all.main`."""
import sys

from verify.cli.all import main

if __name__ == "__main__":
    sys.exit(main())
