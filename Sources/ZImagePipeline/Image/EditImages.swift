import Foundation

/// Reading the pictures img2img and inpainting start from: PNG only, the size checked from the
/// header before anything is decoded, resized as `VaeImageProcessor` and A1111 resize (to the
/// generation's size; without one, down to a multiple of 16).
public enum EditImages {
    /// Why an init image or mask cannot be used; `field` is the caller's name for it.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var field: String
        public var reason: String
        public var description: String { "\(field) \(reason)" }
    }

    /// The largest picture decoded (a 4096² PNG; the generation limits are smaller).
    public static let maximumPixels = 4096 * 4096

    /// Width and height from a PNG's IHDR, without decoding it.
    public static func pngSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count >= 24, Array(bytes[0..<8]) == signature, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            return nil
        }
        func word(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (word(16), word(20))
    }

    /// Decodes a PNG after checking its declared size; errors say what is wrong in a sentence.
    public static func decode(_ bytes: [UInt8], field: String) throws -> RGBImage {
        guard let size = pngSize(bytes) else { throw Failure(field: field, reason: "is not a PNG image") }
        guard size.width > 0, size.height > 0, size.width <= 16384, size.height <= 16384,
              size.width * size.height <= maximumPixels else {
            throw Failure(field: field, reason: "is \(size.width)x\(size.height); at most 4096x4096 pixels are read")
        }
        do {
            return try PNGDecoder.decode(bytes).image
        } catch {
            throw Failure(field: field, reason: "is not a readable PNG image (\(error))")
        }
    }

    /// The size a generation from `image` has: the one asked for, else the image's rounded down
    /// to multiples of 16 (diffusers' `get_default_height_width`).
    public static func targetSize(of image: RGBImage, width: Int?, height: Int?) -> (width: Int, height: Int) {
        (width ?? max(16, image.width / 16 * 16), height ?? max(16, image.height / 16 * 16))
    }

    /// `InitImage` from files, as `zimage generate --init-image --mask` reads them.
    public static func load(initImage: String, mask: String?, width: Int?, height: Int?) throws -> InitImage {
        func read(_ path: String, _ field: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Failure(field: field, reason: "\(path): cannot be read")
            }
            return [UInt8](data)
        }
        let image = try decode(read(initImage, "--init-image"), field: "--init-image")
        let maskImage = try mask.map { try decode(read($0, "--mask"), field: "--mask") }
        return make(image: image, mask: maskImage, width: width, height: height)
    }

    /// The init image (and mask) resized to the generation's size.
    public static func make(image: RGBImage, mask: RGBImage?, width: Int?, height: Int?) -> InitImage {
        let size = targetSize(of: image, width: width, height: height)
        let resized = Resampling.lanczos(image, width: size.width, height: size.height)
        let grey = mask.map { Resampling.lanczos(Resampling.luminance($0), width: size.width, height: size.height) }
        return InitImage(image: resized, mask: grey.map { Resampling.luminancePlane($0) })
    }
}

/// PIL-style resampling (separable Lanczos-3, support widened when shrinking, as
/// `Image.resize(…, LANCZOS)`); float arithmetic, so within a unit of PIL's fixed-point result.
public enum Resampling {
    /// `image` at `width`×`height`; the same image when the size is already right.
    public static func lanczos(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        guard image.width != width || image.height != height else { return image }
        let horizontal = pass(image.pixels, lines: image.height, from: image.width, to: width, stride: 3, across: false)
        let vertical = pass(horizontal, lines: width, from: image.height, to: height, stride: 3, across: true)
        return RGBImage(width: width, height: height, pixels: vertical)
    }

    /// PIL's `convert("L")`: (R·19595 + G·38470 + B·7471 + 2^15) >> 16, kept as a grey RGB image.
    public static func luminance(_ image: RGBImage) -> RGBImage {
        var out = image.pixels
        for index in 0..<(image.width * image.height) {
            let (r, g, b) = (Int(out[index * 3]), Int(out[index * 3 + 1]), Int(out[index * 3 + 2]))
            let l = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
            (out[index * 3], out[index * 3 + 1], out[index * 3 + 2]) = (l, l, l)
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// One byte a pixel from a grey RGB image.
    public static func luminancePlane(_ image: RGBImage) -> [UInt8] {
        (0..<(image.width * image.height)).map { image.pixels[$0 * 3] }
    }

    static func kernel(_ x: Double) -> Double {
        let a = abs(x)
        guard a < 3 else { return 0 }
        guard a > 1e-12 else { return 1 }
        let pi = Double.pi
        return 3 * Foundation.sin(pi * a) * Foundation.sin(pi * a / 3) / (pi * pi * a * a)
    }

    /// Resamples along one axis: `lines` lines of `from` samples (3 channels) to `to` samples.
    static func pass(_ input: [UInt8], lines: Int, from: Int, to: Int, stride channels: Int, across: Bool) -> [UInt8] {
        if from == to { return input }
        let scale = Double(from) / Double(to), filterScale = max(scale, 1), support = 3 * filterScale
        var output = [UInt8](repeating: 0, count: lines * to * channels)
        for target in 0..<to {
            let center = (Double(target) + 0.5) * scale
            let low = max(0, Int((center - support + 0.5).rounded(.down)))
            let high = min(from, Int((center + support + 0.5).rounded(.down)))
            var weights = (low..<high).map { kernel((Double($0) - center + 0.5) / filterScale) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            for line in 0..<lines {
                for channel in 0..<channels {
                    var sum = 0.0
                    for (offset, weight) in weights.enumerated() {
                        let source = low + offset
                        let index = across ? (source * lines + line) : (line * from + source)
                        sum += weight * Double(input[index * channels + channel])
                    }
                    let index = across ? (target * lines + line) : (line * to + target)
                    output[index * channels + channel] = UInt8(min(max(sum.rounded(), 0), 255))
                }
            }
        }
        return output
    }
}
