#include "zimage_zlib.h"
#include <limits.h>
#include <zlib.h>

int zimage_gunzip(const uint8_t *input, size_t count, uint8_t *output, size_t capacity, size_t *written) {
    *written = 0;
    if (count > UINT_MAX || capacity > UINT_MAX) return 2;
    z_stream stream = {0};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) return 3;   // 15-bit window, gzip header
    stream.next_in = (Bytef *)input;
    stream.avail_in = (uInt)count;
    stream.next_out = output;
    stream.avail_out = (uInt)capacity;
    int status = inflate(&stream, Z_FINISH);
    *written = capacity - stream.avail_out;
    int result = status == Z_STREAM_END ? 0 : (status == Z_BUF_ERROR && stream.avail_out == 0) ? 2 : 1;
    inflateEnd(&stream);
    return result;
}
