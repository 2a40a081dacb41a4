// A small C layer over Debian's libpng (libpng16) for zimage.
//
// libpng reports errors by longjmp-ing out of the failing call, which Swift cannot survive, so
// every libpng call happens here, under a setjmp in C, and errors come back as a nonzero return
// value plus a message. Nothing in this header longjmps or prints.
#ifndef ZIMAGE_PNG_H
#define ZIMAGE_PNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One text chunk to write. The caller has already chosen the chunk type and encoding.
typedef struct zimage_png_text {
    /// NUL-terminated keyword in Latin-1, 1-79 bytes (validated by the caller; libpng would
    /// otherwise rewrite invalid characters to spaces with only a warning).
    const char *key;
    /// NUL-terminated value without interior NULs: Latin-1 for tEXt, UTF-8 for iTXt.
    const char *value;
    /// 0: uncompressed tEXt. 1: uncompressed iTXt with empty language tag and translated key
    /// (byte-for-byte what PIL's PngInfo.add_text writes for non-Latin-1 text).
    int is_itxt;
} zimage_png_text;

/// One text chunk read back from a PNG (tEXt, zTXt or iTXt, decompressed).
typedef struct zimage_png_decoded_text {
    /// NUL-terminated Latin-1 keyword.
    char *key;
    /// The value's bytes (NUL-terminated as well): Latin-1 when is_utf8 == 0 (tEXt, zTXt),
    /// UTF-8 when is_utf8 == 1 (iTXt).
    char *value;
    size_t value_length;
    int is_utf8;
} zimage_png_decoded_text;

/// Encodes an 8-bit RGB image (row-major, rows of `width * 3` bytes, no padding) as a
/// non-interlaced PNG in memory, with the text chunks placed before IDAT in the given order.
/// `compression_level` is zlib's 0-9 (6 is zlib's and PIL's default).
/// On success returns 0 and sets *out_buffer (free it with zimage_png_free) and *out_size.
/// On failure returns nonzero, leaves *out_buffer NULL and writes a NUL-terminated message
/// into `error` (when error_size > 0).
int zimage_png_encode(const uint8_t *rgb, uint32_t width, uint32_t height,
                      const zimage_png_text *texts, int text_count, int compression_level,
                      uint8_t **out_buffer, size_t *out_size,
                      char *error, size_t error_size);

/// Decodes a PNG of any colour type and bit depth to 8-bit RGB (palette and grey expanded,
/// 16-bit samples scaled to 8, alpha dropped, interlacing undone), and returns its text chunks
/// in file order. Rejects images over 32768 pixels a side or 2^26 pixels in all.
/// On success returns 0 and sets *out_rgb (width * height * 3 bytes; free with
/// zimage_png_free) and *out_texts / *out_text_count (free with zimage_png_free_texts).
/// On failure returns nonzero, leaves the outputs NULL / 0 and writes a message into `error`.
int zimage_png_decode(const uint8_t *data, size_t size,
                      uint32_t *out_width, uint32_t *out_height, uint8_t **out_rgb,
                      zimage_png_decoded_text **out_texts, int *out_text_count,
                      char *error, size_t error_size);

/// As zimage_png_decode, but to 8-bit RGBA (4 bytes a pixel): alpha kept, tRNS turned into alpha,
/// 255 for images without transparency. Text chunks are not returned.
int zimage_png_decode_rgba(const uint8_t *data, size_t size,
                           uint32_t *out_width, uint32_t *out_height, uint8_t **out_rgba,
                           char *error, size_t error_size);

/// Frees a buffer returned by zimage_png_encode or zimage_png_decode. NULL is fine.
void zimage_png_free(void *buffer);

/// Frees the text array returned by zimage_png_decode. NULL is fine.
void zimage_png_free_texts(zimage_png_decoded_text *texts, int count);

#ifdef __cplusplus
}
#endif

#endif
