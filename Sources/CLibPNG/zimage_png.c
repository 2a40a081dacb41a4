// See include/zimage_png.h. libpng's error handler longjmps; every setjmp lives in a
// `noinline` *_run function whose own locals are never modified after the setjmp, and all
// state that changes under libpng (buffers, positions, messages) lives in a context struct
// owned by the caller, so nothing becomes indeterminate after a longjmp (C11 7.13.2.1p3).
#include "zimage_png.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define ZIMAGE_PNG_MAX_SIDE 32768u
#define ZIMAGE_PNG_MAX_PIXELS ((size_t)1 << 26)

static void set_error(char *error, size_t error_size, const char *message) {
    if (error == NULL || error_size == 0) return;
    if (message == NULL) message = "unknown libpng error";
    size_t n = strlen(message);
    if (n >= error_size) n = error_size - 1;
    memcpy(error, message, n);
    error[n] = '\0';
}

// Shared by reader and writer: where libpng's error message goes.
typedef struct {
    char *error;
    size_t error_size;
} error_sink;

static void on_error(png_structp png, png_const_charp message) {
    error_sink *sink = (error_sink *)png_get_error_ptr(png);
    if (sink != NULL) set_error(sink->error, sink->error_size, message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    // libpng's default prints to stderr; zimage wants silence (warnings never fail a write).
    (void)png;
    (void)message;
}

// MARK: - Encoding

typedef struct {
    error_sink sink;
    png_structp png;
    png_infop info;
    uint8_t *buffer;
    size_t size;
    size_t capacity;
    png_text *texts;
} encode_context;

static void on_write(png_structp png, png_bytep data, size_t length) {
    encode_context *c = (encode_context *)png_get_io_ptr(png);
    if (length > SIZE_MAX - c->size) png_error(png, "PNG output too large");
    size_t needed = c->size + length;
    if (needed > c->capacity) {
        size_t capacity = c->capacity ? c->capacity : 65536;
        while (capacity < needed) {
            if (capacity > SIZE_MAX / 2) { capacity = needed; break; }
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(c->buffer, capacity);
        if (grown == NULL) png_error(png, "out of memory growing the PNG output buffer");
        c->buffer = grown;
        c->capacity = capacity;
    }
    memcpy(c->buffer + c->size, data, length);
    c->size = needed;
}

static void on_flush(png_structp png) { (void)png; }

__attribute__((noinline))
static int encode_run(encode_context *c, const uint8_t *rgb, uint32_t width, uint32_t height,
                      const zimage_png_text *texts, int text_count, int compression_level) {
    if (setjmp(png_jmpbuf(c->png))) return -1;

    png_set_write_fn(c->png, c, on_write, on_flush);
    png_set_IHDR(c->png, c->info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(c->png, compression_level);

    if (text_count > 0) {
        for (int i = 0; i < text_count; i++) {
            png_text *t = &c->texts[i];
            memset(t, 0, sizeof *t);
            t->key = (png_charp)texts[i].key;
            t->text = (png_charp)texts[i].value;
            if (texts[i].is_itxt) {
                t->compression = PNG_ITXT_COMPRESSION_NONE;
                t->lang = (png_charp)"";
                t->lang_key = (png_charp)"";
            } else {
                t->compression = PNG_TEXT_COMPRESSION_NONE;
            }
        }
        png_set_text(c->png, c->info, c->texts, text_count);  // copies the strings
    }

    png_write_info(c->png, c->info);
    const size_t stride = (size_t)width * 3;
    for (uint32_t y = 0; y < height; y++) {
        png_write_row(c->png, (png_const_bytep)(rgb + (size_t)y * stride));
    }
    png_write_end(c->png, NULL);
    return 0;
}

int zimage_png_encode(const uint8_t *rgb, uint32_t width, uint32_t height,
                      const zimage_png_text *texts, int text_count, int compression_level,
                      uint8_t **out_buffer, size_t *out_size,
                      char *error, size_t error_size) {
    if (out_buffer != NULL) *out_buffer = NULL;
    if (out_size != NULL) *out_size = 0;
    set_error(error, error_size, "");
    if (out_buffer == NULL || out_size == NULL) {
        set_error(error, error_size, "no output pointers given");
        return -1;
    }
    if (rgb == NULL || width == 0 || height == 0) {
        set_error(error, error_size, "image is empty");
        return -1;
    }
    if (text_count < 0 || (text_count > 0 && texts == NULL)) {
        set_error(error, error_size, "invalid text list");
        return -1;
    }
    for (int i = 0; i < text_count; i++) {
        if (texts[i].key == NULL || texts[i].value == NULL) {
            set_error(error, error_size, "text chunk with a NULL key or value");
            return -1;
        }
    }
    if (compression_level < 0 || compression_level > 9) {
        set_error(error, error_size, "compression level must be 0-9");
        return -1;
    }

    encode_context c;
    memset(&c, 0, sizeof c);
    c.sink.error = error;
    c.sink.error_size = error_size;
    if (text_count > 0) {
        c.texts = (png_text *)calloc((size_t)text_count, sizeof(png_text));
        if (c.texts == NULL) {
            set_error(error, error_size, "out of memory");
            return -1;
        }
    }
    c.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c.sink, on_error, on_warning);
    if (c.png == NULL) {
        free(c.texts);
        set_error(error, error_size, "png_create_write_struct failed");
        return -1;
    }
    c.info = png_create_info_struct(c.png);
    if (c.info == NULL) {
        png_destroy_write_struct(&c.png, NULL);
        free(c.texts);
        set_error(error, error_size, "png_create_info_struct failed");
        return -1;
    }

    int status = encode_run(&c, rgb, width, height, texts, text_count, compression_level);

    png_destroy_write_struct(&c.png, &c.info);
    free(c.texts);
    if (status != 0) {
        free(c.buffer);
        if (error != NULL && error_size > 0 && error[0] == '\0') {
            set_error(error, error_size, "libpng failed to encode the image");
        }
        return status;
    }
    *out_buffer = c.buffer;
    *out_size = c.size;
    return 0;
}

// MARK: - Decoding

typedef struct {
    error_sink sink;
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size;
    size_t position;
    uint32_t width;
    uint32_t height;
    uint8_t *rgb;
    png_bytep *rows;
    zimage_png_decoded_text *texts;
    int text_count;
    int channels;  // 3 (RGB) or 4 (RGBA, for zimage_png_decode_rgba)
} decode_context;

static void on_read(png_structp png, png_bytep out, size_t length) {
    decode_context *c = (decode_context *)png_get_io_ptr(png);
    if (length > c->size - c->position) png_error(png, "unexpected end of PNG data");
    memcpy(out, c->data + c->position, length);
    c->position += length;
}

static char *copy_bytes(const char *bytes, size_t length) {
    char *copy = (char *)malloc(length + 1);
    if (copy == NULL) return NULL;
    if (length > 0) memcpy(copy, bytes, length);
    copy[length] = '\0';
    return copy;
}

__attribute__((noinline))
static int decode_run(decode_context *c) {
    if (setjmp(png_jmpbuf(c->png))) return -1;

    png_set_read_fn(c->png, c, on_read);
    png_set_user_limits(c->png, ZIMAGE_PNG_MAX_SIDE, ZIMAGE_PNG_MAX_SIDE);
    png_read_info(c->png, c->info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(c->png, c->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if ((size_t)width * (size_t)height > ZIMAGE_PNG_MAX_PIXELS) {
        png_error(c->png, "image too large to decode");
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(c->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(c->png);
    if (bit_depth == 16) png_set_scale_16(c->png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_gray_to_rgb(c->png);
    }
    if (c->channels == 4) {
        // Keep (or make) an alpha channel: tRNS becomes alpha, opaque images get 255.
        if (png_get_valid(c->png, c->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(c->png);
        else if (!(color_type & PNG_COLOR_MASK_ALPHA)) png_set_add_alpha(c->png, 0xff, PNG_FILLER_AFTER);
    } else if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(c->png, c->info, PNG_INFO_tRNS)) {
        // Palette and grey images with a tRNS chunk gain an alpha channel when expanded: drop it too.
        png_set_strip_alpha(c->png);
    }
    (void)png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);

    const size_t channels = (size_t)c->channels;
    if (png_get_channels(c->png, c->info) != channels || png_get_bit_depth(c->png, c->info) != 8 ||
        png_get_rowbytes(c->png, c->info) != (size_t)width * channels) {
        png_error(c->png, "could not convert the image to 8-bit RGB");
    }

    const size_t stride = (size_t)width * channels;
    c->rgb = (uint8_t *)malloc(stride * height);
    c->rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (c->rgb == NULL || c->rows == NULL) png_error(c->png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) c->rows[y] = c->rgb + (size_t)y * stride;
    png_read_image(c->png, c->rows);
    png_read_end(c->png, c->info);  // text chunks after IDAT land in the same info struct
    c->width = width;
    c->height = height;

    png_textp texts = NULL;
    int count = png_get_text(c->png, c->info, &texts, NULL);
    if (count > 0 && texts != NULL) {
        c->texts = (zimage_png_decoded_text *)calloc((size_t)count, sizeof *c->texts);
        if (c->texts == NULL) png_error(c->png, "out of memory");
        for (int i = 0; i < count; i++) {
            zimage_png_decoded_text *out = &c->texts[i];
            int is_utf8 = texts[i].compression >= PNG_ITXT_COMPRESSION_NONE;
            size_t length = is_utf8 ? texts[i].itxt_length : texts[i].text_length;
            const char *value = texts[i].text != NULL ? texts[i].text : "";
            if (texts[i].text == NULL) length = 0;
            const char *key = texts[i].key != NULL ? texts[i].key : "";
            out->key = copy_bytes(key, strlen(key));
            out->value = copy_bytes(value, length);
            out->value_length = length;
            out->is_utf8 = is_utf8;
            c->text_count = i + 1;  // so a failure below frees what was copied
            if (out->key == NULL || out->value == NULL) png_error(c->png, "out of memory");
        }
    }
    return 0;
}

static int decode_with_channels(const uint8_t *data, size_t size, int channels,
                                uint32_t *out_width, uint32_t *out_height, uint8_t **out_rgb,
                                zimage_png_decoded_text **out_texts, int *out_text_count,
                                char *error, size_t error_size);

int zimage_png_decode(const uint8_t *data, size_t size,
                      uint32_t *out_width, uint32_t *out_height, uint8_t **out_rgb,
                      zimage_png_decoded_text **out_texts, int *out_text_count,
                      char *error, size_t error_size) {
    return decode_with_channels(data, size, 3, out_width, out_height, out_rgb, out_texts, out_text_count,
                                error, error_size);
}

int zimage_png_decode_rgba(const uint8_t *data, size_t size,
                           uint32_t *out_width, uint32_t *out_height, uint8_t **out_rgba,
                           char *error, size_t error_size) {
    zimage_png_decoded_text *texts = NULL;
    int count = 0;
    int status = decode_with_channels(data, size, 4, out_width, out_height, out_rgba, &texts, &count,
                                      error, error_size);
    zimage_png_free_texts(texts, count);
    return status;
}

static int decode_with_channels(const uint8_t *data, size_t size, int channels,
                                uint32_t *out_width, uint32_t *out_height, uint8_t **out_rgb,
                                zimage_png_decoded_text **out_texts, int *out_text_count,
                                char *error, size_t error_size) {
    if (out_width != NULL) *out_width = 0;
    if (out_height != NULL) *out_height = 0;
    if (out_rgb != NULL) *out_rgb = NULL;
    if (out_texts != NULL) *out_texts = NULL;
    if (out_text_count != NULL) *out_text_count = 0;
    set_error(error, error_size, "");
    if (out_width == NULL || out_height == NULL || out_rgb == NULL || out_texts == NULL ||
        out_text_count == NULL) {
        set_error(error, error_size, "no output pointers given");
        return -1;
    }
    if (data == NULL || size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_error(error, error_size, "not a PNG file (bad signature)");
        return -1;
    }

    decode_context c;
    memset(&c, 0, sizeof c);
    c.channels = channels;
    c.sink.error = error;
    c.sink.error_size = error_size;
    c.data = data;
    c.size = size;
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c.sink, on_error, on_warning);
    if (c.png == NULL) {
        set_error(error, error_size, "png_create_read_struct failed");
        return -1;
    }
    c.info = png_create_info_struct(c.png);
    if (c.info == NULL) {
        png_destroy_read_struct(&c.png, NULL, NULL);
        set_error(error, error_size, "png_create_info_struct failed");
        return -1;
    }

    int status = decode_run(&c);

    png_destroy_read_struct(&c.png, &c.info, NULL);
    free(c.rows);
    if (status != 0) {
        free(c.rgb);
        zimage_png_free_texts(c.texts, c.text_count);
        if (error != NULL && error_size > 0 && error[0] == '\0') {
            set_error(error, error_size, "libpng failed to decode the image");
        }
        return status;
    }
    *out_width = c.width;
    *out_height = c.height;
    *out_rgb = c.rgb;
    *out_texts = c.texts;
    *out_text_count = c.text_count;
    return 0;
}

void zimage_png_free(void *buffer) { free(buffer); }

void zimage_png_free_texts(zimage_png_decoded_text *texts, int count) {
    if (texts == NULL) return;
    for (int i = 0; i < count; i++) {
        free(texts[i].key);
        free(texts[i].value);
    }
    free(texts);
}
