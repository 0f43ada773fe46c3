"""The command lines, run as ``python -m verify.all | bench | calibrate | gpu | sweep`` (the shims beside cli/)."""
