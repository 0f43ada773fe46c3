"""The trainer library: batched networks and their trainers (GD, SGD, gradient flow) and the fused kernels."""
