// Tuning variants of Sources/ZImageCUDA/Kernels/flash_attention.cu that the backend does not launch
// (bench/kernels/tune_fused.py compiles this file with that folder on the include path). Named by
// query rows per block (BM) and keys per tile (BN); shared memory (BM + 4·BN) rows of FA_LDS bf16.
#include "flash_attention.cu"

FA_ENTRY(flash_attention_bf16_m128_n64, 1, 8, 64, false, false)
FA_ENTRY(flash_attention_bf16_m128_n32_w4, 2, 4, 32, false, false)
FA_ENTRY(flash_attention_bf16_m64_n128, 1, 4, 128, false, false)
// Q kept in registers and exponentials on the special-function unit.
FA_ENTRY(flash_attention_bf16_m64_n64_qr, 1, 4, 64, true, true)
FA_ENTRY(flash_attention_bf16_m128_n64_qr, 1, 8, 64, true, true)
FA_ENTRY(flash_attention_bf16_m128_n32_w4_fx, 2, 4, 32, false, true)
FA_ENTRY(flash_attention_bf16_m128_n64_w4_fx, 2, 4, 64, false, true)
FA_ENTRY(flash_attention_bf16_m64_n32_qr, 1, 4, 32, true, true)
