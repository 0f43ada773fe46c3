"""The empirical side, in rooms that import only downward (tests/test_layers.py).

``files``, ``plots`` (leaves) < ``train`` (trainers, kernels) < ``sweeps`` (Dask sweeps) < ``claims``, ``testing``
(the public testing API) < ``cli`` (command lines) < ``all``, ``bench``, ``calibrate``, ``gpu``, ``sweep``
(``python -m verify.X``).
"""
