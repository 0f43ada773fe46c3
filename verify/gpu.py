"""``python -m verify.gpu`` (the GPU check): runs :func:`verify.cli.gpu.main`."""
import sys

from verify.cli.gpu import main

if __name__ == "__main__":
    sys.exit(main())
