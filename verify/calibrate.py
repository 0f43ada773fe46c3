"""``python -m verify.calibrate`` (calibration bands): runs :func:`verify.cli.calibrate.main`."""
import sys

from verify.cli.calibrate import main

if __name__ == "__main__":
    sys.exit(main())
