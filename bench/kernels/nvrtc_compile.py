#!/usr/bin/env python3
"""Compiles .cu files with NVRTC (no GPU needed) and prints each kernel's registers, spills and
shared memory from the compiler's verbose report. Usage: nvrtc_compile.py FILE.cu [sm_90]."""
import ctypes, glob, os, sys

def nvrtc():
    for path in [os.environ.get("ZIMAGE_NVRTC_LIBRARY", "")] + glob.glob("/usr/local/cuda/lib64/libnvrtc.so*") + \
            glob.glob(os.path.join(os.path.dirname(__import__("nvidia.cuda_nvrtc").cuda_nvrtc.__path__[0]),
                                   "cuda_nvrtc", "lib", "libnvrtc.so*")):
        if path and os.path.exists(path):
            return ctypes.CDLL(path)
    raise SystemExit("no libnvrtc")

def compile_file(path, arch="sm_90"):
    lib = nvrtc()
    src = open(path).read().encode()
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, os.path.basename(path).encode(), 0, None, None) == 0
    kernels = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Sources", "ZImageCUDA", "Kernels")
    opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", b"-Xptxas", b"-v", f"-I{kernels}".encode()]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    print(log.value.decode(errors="replace"))
    return rc

if __name__ == "__main__":
    rc = compile_file(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "sm_90")
    sys.exit(1 if rc else 0)
