#!/usr/bin/env python3
"""Run under `compute-sanitizer --tool initcheck`: a cuBLAS bf16 product into fresh memory, then a
plain kernel reading it. Reports from the reading kernel mean initcheck does not see the GEMM's
stores (Hopper GEMMs store through the tensor-memory accelerator), i.e. a false positive."""
import torch
a = torch.randn(2048, 2048, device="cuda", dtype=torch.bfloat16)
b = torch.randn(2048, 2048, device="cuda", dtype=torch.bfloat16)
c = a @ b
print("sum", float(c.float().sum()))
