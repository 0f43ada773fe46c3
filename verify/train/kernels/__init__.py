"""Fused DLN GD/SGD trainers: a Triton kernel (GPU; Triton's interpreter on CPU) and a numba CPU loop.

Both mirror verify.train.dln.train_gd and record the exact-GD statistics of numerics.dln_gd.GDStats (Even et al. 2023,
arXiv 2302.08982, Thm 1) inside the loop. Importing this package imports neither triton nor numba.
"""
