"""The empirical side: batched networks, trainers, claims, ``python -m verify.all`` and ``verify.bench``."""
