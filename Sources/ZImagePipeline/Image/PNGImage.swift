#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLibPNG

/// An 8-bit RGB image.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Row-major RGB, `width * height * 3` bytes, no row padding.
    public var pixels: [UInt8]

    /// Wraps existing pixels; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
        precondition(
            pixels.count == width * height * 3,
            "RGBImage: \(pixels.count) bytes for \(width)x\(height) RGB (expected \(width * height * 3))"
        )
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
    }
}

public enum PNGError: Error, CustomStringConvertible {
    /// The image's size or pixel buffer can't be written as a PNG.
    case invalidImage(String)
    /// A text chunk keyword PNG doesn't allow (1-79 Latin-1 characters, printable, no leading,
    /// trailing or doubled spaces).
    case invalidTextKey(String, reason: String)
    /// A text value PNG can't hold (it contains a NUL character).
    case invalidTextValue(key: String, reason: String)
    /// libpng reported an error while encoding.
    case encodingFailed(String)
    /// The bytes aren't a PNG libpng can read (corrupt, truncated, too large, ...).
    case decodingFailed(String)
    /// Writing or renaming the output file failed.
    case fileWriteFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidImage(let reason): return "cannot encode PNG: \(reason)"
        case .invalidTextKey(let key, let reason): return "invalid PNG text key \(String(reflecting: key)): \(reason)"
        case .invalidTextValue(let key, let reason): return "invalid PNG text value for key \(String(reflecting: key)): \(reason)"
        case .encodingFailed(let message): return "PNG encoding failed: \(message)"
        case .decodingFailed(let message): return "PNG decoding failed: \(message)"
        case .fileWriteFailed(let path, let reason): return "cannot write PNG to \(path): \(reason)"
        }
    }
}

public enum PNGEncoder {
    /// PNG bytes (8-bit RGB, non-interlaced) with one text chunk per entry, in order, before the
    /// image data. Like PIL's `PngInfo.add_text(key, value)`, which AUTOMATIC1111 uses for its
    /// "parameters" text: a value that is all Latin-1 (U+0000-U+00FF) goes in an uncompressed
    /// `tEXt` chunk as Latin-1 bytes, anything else (Chinese prompts, emoji, ...) in an
    /// uncompressed `iTXt` chunk as UTF-8 with empty language tag and translated keyword.
    /// Keys must be valid PNG keywords; values must not contain NUL.
    /// `compressionLevel` is zlib's 0-9; 6 is zlib's and PIL's default.
    public static func encode(
        _ image: RGBImage, text: [(key: String, value: String)], compressionLevel: Int = 6
    ) throws -> [UInt8] {
        guard image.width > 0, image.height > 0 else {
            throw PNGError.invalidImage("empty image (\(image.width)x\(image.height))")
        }
        guard image.width <= Int(UInt32.max / 3), image.height <= Int(UInt32.max) else {
            throw PNGError.invalidImage("image too large (\(image.width)x\(image.height))")
        }
        guard image.pixels.count == image.width * image.height * 3 else {
            throw PNGError.invalidImage(
                "\(image.pixels.count) pixel bytes for \(image.width)x\(image.height) RGB "
                    + "(expected \(image.width * image.height * 3))")
        }
        guard (0...9).contains(compressionLevel) else {
            throw PNGError.invalidImage("compression level \(compressionLevel) is not in 0...9")
        }

        // Keys and values as NUL-terminated C strings, in the encoding their chunk type uses.
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { for s in strings { s.deallocate() } }
        func cString(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar> {
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            strings.append(p)
            return p
        }
        var chunks: [zimage_png_text] = []
        chunks.reserveCapacity(text.count)
        for (key, value) in text {
            let keyBytes = try keywordBytes(key)
            guard !value.unicodeScalars.contains("\0") else {
                throw PNGError.invalidTextValue(key: key, reason: "contains a NUL character")
            }
            let latin1 = latin1Bytes(value)
            let valueBytes = latin1 ?? Array(value.utf8)
            chunks.append(zimage_png_text(key: cString(keyBytes), value: cString(valueBytes), is_itxt: latin1 == nil ? 1 : 0))
        }

        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var error = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            chunks.withUnsafeBufferPointer { chunks in
                error.withUnsafeMutableBufferPointer { error in
                    zimage_png_encode(
                        pixels.baseAddress, UInt32(image.width), UInt32(image.height),
                        chunks.baseAddress, Int32(chunks.count), Int32(compressionLevel),
                        &buffer, &size, error.baseAddress, error.count)
                }
            }
        }
        defer { zimage_png_free(buffer) }
        guard status == 0, let buffer else { throw PNGError.encodingFailed(message(error)) }
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }

    /// Encodes like `encode` and writes the file atomically: the bytes go to a temporary file
    /// in the same directory (flushed to disk), which is then renamed over `path`, so readers
    /// never see a partial PNG. The new file's mode is 0666 less the umask.
    public static func write(
        _ image: RGBImage, text: [(key: String, value: String)], to path: String, compressionLevel: Int = 6
    ) throws {
        let bytes = try encode(image, text: text, compressionLevel: compressionLevel)
        try writeAtomically(bytes, to: path)
    }

    /// The Latin-1 bytes of `string`, or nil when it has a character above U+00FF.
    static func latin1Bytes(_ string: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.unicodeScalars.count)
        for scalar in string.unicodeScalars {
            guard scalar.value <= 0xFF else { return nil }
            bytes.append(UInt8(scalar.value))
        }
        return bytes
    }

    /// A PNG keyword's Latin-1 bytes (PNG spec 11.3.4.2; what libpng's png_check_keyword would
    /// otherwise silently rewrite).
    static func keywordBytes(_ key: String) throws -> [UInt8] {
        guard let bytes = latin1Bytes(key) else {
            throw PNGError.invalidTextKey(key, reason: "keywords must be Latin-1")
        }
        guard (1...79).contains(bytes.count) else {
            throw PNGError.invalidTextKey(key, reason: "keywords must be 1 to 79 characters")
        }
        for b in bytes where !((32...126).contains(b) || (161...255).contains(b)) {
            throw PNGError.invalidTextKey(key, reason: "character 0x\(String(b, radix: 16)) is not allowed")
        }
        if bytes.first == 32 || bytes.last == 32 {
            throw PNGError.invalidTextKey(key, reason: "leading or trailing space")
        }
        for i in 1..<bytes.count where bytes[i] == 32 && bytes[i - 1] == 32 {
            throw PNGError.invalidTextKey(key, reason: "consecutive spaces")
        }
        return bytes
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        func failure(_ what: String, _ code: Int32) -> PNGError {
            .fileWriteFailed(path: path, reason: "\(what): \(String(cString: strerror(code)))")
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else {
            throw PNGError.fileWriteFailed(path: path, reason: "path names a directory")
        }
        let temporary = directory + "." + name + ".tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw failure("cannot create \(temporary)", errno) }
        var closed = false
        var renamed = false
        defer {
            if !closed { _ = close(fd) }
            if !renamed { _ = unlink(temporary) }
        }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("write failed", errno)
                }
                offset += n
            }
        }
        guard fsync(fd) == 0 else { throw failure("fsync failed", errno) }
        closed = true
        guard close(fd) == 0 else { throw failure("close failed", errno) }
        guard rename(temporary, path) == 0 else { throw failure("rename failed", errno) }
        renamed = true
    }
}

/// For tests: decode an 8-bit RGB/RGBA PNG back to RGBImage and its text chunks (tEXt, iTXt, zTXt).
public enum PNGDecoder {
    /// Decodes any PNG libpng reads to 8-bit RGB (palette and grey are expanded, 16-bit samples
    /// scaled, alpha dropped) plus its text chunks: tEXt and zTXt values read as Latin-1, iTXt
    /// as UTF-8 (invalid UTF-8 becomes U+FFFD); when a key repeats, the last chunk wins, as in
    /// PIL's `im.text`. Corrupt or truncated input throws `PNGError.decodingFailed`.
    public static func decode(_ bytes: [UInt8]) throws -> (image: RGBImage, text: [String: String]) {
        var width: UInt32 = 0
        var height: UInt32 = 0
        var rgb: UnsafeMutablePointer<UInt8>? = nil
        var texts: UnsafeMutablePointer<zimage_png_decoded_text>? = nil
        var textCount: Int32 = 0
        var error = [CChar](repeating: 0, count: 512)
        let status = bytes.withUnsafeBufferPointer { data in
            error.withUnsafeMutableBufferPointer { error in
                zimage_png_decode(
                    data.baseAddress, data.count, &width, &height, &rgb, &texts, &textCount,
                    error.baseAddress, error.count)
            }
        }
        defer {
            zimage_png_free(rgb)
            zimage_png_free_texts(texts, textCount)
        }
        guard status == 0, let rgb else { throw PNGError.decodingFailed(message(error)) }

        let count = Int(width) * Int(height) * 3
        let image = RGBImage(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: rgb, count: count)))
        var text: [String: String] = [:]
        if let texts {
            for i in 0..<Int(textCount) {
                let chunk = texts[i]
                guard let keyPointer = chunk.key else { continue }
                let key = latin1String(UnsafeRawBufferPointer(start: keyPointer, count: strlen(keyPointer)))
                let valueBytes = UnsafeRawBufferPointer(start: chunk.value, count: chunk.value == nil ? 0 : chunk.value_length)
                text[key] = chunk.is_utf8 != 0 ? String(decoding: valueBytes, as: UTF8.self) : latin1String(valueBytes)
            }
        }
        return (image, text)
    }

    /// The alpha plane of a PNG (one byte a pixel, 255 where the image has no transparency), for
    /// masks whose transparent pixels mark the area to edit (OpenAI's `images/edits`).
    public static func alpha(_ bytes: [UInt8]) throws -> (width: Int, height: Int, alpha: [UInt8]) {
        var width: UInt32 = 0, height: UInt32 = 0
        var rgba: UnsafeMutablePointer<UInt8>? = nil
        var error = [CChar](repeating: 0, count: 512)
        let status = bytes.withUnsafeBufferPointer { data in
            error.withUnsafeMutableBufferPointer { error in
                zimage_png_decode_rgba(data.baseAddress, data.count, &width, &height, &rgba, error.baseAddress,
                                       error.count)
            }
        }
        defer { zimage_png_free(rgba) }
        guard status == 0, let rgba else { throw PNGError.decodingFailed(message(error)) }
        let count = Int(width) * Int(height)
        return (Int(width), Int(height), (0..<count).map { rgba[$0 * 4 + 3] })
    }

    static func latin1String(_ bytes: UnsafeRawBufferPointer) -> String {
        var scalars = String.UnicodeScalarView()
        for b in bytes { scalars.append(Unicode.Scalar(b)) }
        return String(scalars)
    }
}

/// POSIX write(2); `write` alone inside `PNGEncoder` would name `PNGEncoder.write`.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}

/// The NUL-terminated message in a C error buffer.
private func message(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return bytes.isEmpty ? "unknown error" : String(decoding: bytes, as: UTF8.self)
}
