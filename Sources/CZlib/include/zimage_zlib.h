// gzip decompression through zlib, for the bundled tokenizer (zlib's inflateInit2 is a macro,
// which Swift cannot call).
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Decompresses the gzip stream `input[0..<count]` into `output[0..<capacity]`; `*written` gets
/// the bytes produced. Returns 0 on success, 1 when the stream is damaged or truncated, 2 when the
/// output does not fit `capacity`, 3 when zlib cannot start.
int zimage_gunzip(const uint8_t *input, size_t count, uint8_t *output, size_t capacity, size_t *written);
