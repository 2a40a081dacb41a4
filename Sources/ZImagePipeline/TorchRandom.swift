// TorchRandom.swift
//
// A bit-exact, dependency-free re-implementation of PyTorch's CPU random normal fill:
//
//     torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
//
// matching torch 2.13 on x86-64 Linux (the AVX2 kernel, which AVX-512 machines also use), including
// the generator state carried from one call to the next.
//
// Recipe (see shared/reference/torch-cpu-randn.md):
//   * Engine: at::mt19937, standard MT19937 seeded with init_genrand(seed & 0xFFFF_FFFF).
//   * numel >= 16: "normal_fill". Write numel float32 uniforms (low 24 bits of one draw * 2^-24), then
//     run Box-Muller in place on blocks of 16, slot j paired with slot j+8 (cos -> j, sin -> j+8), using
//     the float32 Cephes log/sincos of avx_mathfun.h with the multiply-adds GCC fused into FMAs. When
//     numel % 16 != 0 the last 16 slots are refilled from 16 fresh draws and transformed again.
//   * numel < 16: at::normal_distribution<double>: double Box-Muller from 53-bit uniforms (2 draws
//     each), log1p/sin/cos in double, the second value of each pair cached in the generator across calls.
//
// Everything here uses only the Swift standard library. The float32 block transform is a sequence of
// IEEE-754 binary32 operations (with `addingProduct` exactly where torch's binary has an FMA and plain
// `*`/`+` elsewhere), so it is exact on every platform. The double-precision small-tensor path needs
// log1p/sin/cos: log1p is a port of glibc's (fdlibm-derived) implementation and sin/cos are fdlibm's;
// any sub-ulp difference from the libm torch used would only show after rounding to float32 with
// probability ~1e-9 per value.

/// PyTorch's CPU generator (mt19937) and its float32 normal fill.
///
/// `TorchGenerator(seed: s)` is `torch.Generator("cpu").manual_seed(s)`, and each
/// `randn(count:)` call is one `torch.randn(<count elements>, generator: g)` call (float32, CPU),
/// bit for bit as produced by torch 2.13 on x86-64 Linux (AVX2/AVX-512 machines).
///
/// Seeds: `manual_seed` keeps the full 64-bit seed (reported by `initial_seed()`), but the engine is
/// seeded from its **low 32 bits** only, so seeds `s` and `s + 2^32` give identical streams. A negative
/// Python seed `s` corresponds to `UInt64(bitPattern: Int64(s))` (torch wraps it modulo 2^64).
///
/// Value type: copying a generator forks the stream (both copies continue identically).
public struct TorchGenerator: Sendable {
    /// The seed passed to `init(seed:)` (what torch's `initial_seed()` reports).
    public let initialSeed: UInt64

    /// MT19937 state, 624 words.
    private var state: [UInt32]
    /// Index of the next state word to temper; 624 means the state must be twisted first.
    private var index: Int
    /// at::CPUGeneratorImpl::next_double_normal_sample_: the cached second value of the last
    /// double Box-Muller pair (small-tensor path only).
    private var cachedDoubleNormal: Double?

    private static let n = 624
    private static let m = 397

    /// `torch.Generator("cpu").manual_seed(seed)`. Only the low 32 bits of `seed` seed the engine.
    public init(seed: UInt64) {
        initialSeed = seed
        var s = [UInt32](repeating: 0, count: Self.n)
        var prev = UInt32(truncatingIfNeeded: seed)
        s[0] = prev
        for i in 1..<Self.n {
            prev = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(i)
            s[i] = prev
        }
        state = s
        // at::mt19937 starts with left_ = 1: the first draw twists the whole state first.
        index = Self.n
        cachedDoubleNormal = nil
    }

    // MARK: - Public sampling API

    /// Exactly `torch.randn(count elements)` on this generator, advancing its state as torch does
    /// (successive calls continue the stream like successive `torch.randn` calls on one generator).
    ///
    /// The result depends only on the element count, not on the shape: `count < 16` takes torch's
    /// double-precision path (4 engine draws per pair of values, the odd value cached in the generator for
    /// the next small call), `count >= 16` takes the float32 `normal_fill` path (`count` draws, plus 16
    /// more when `count % 16 != 0`; it neither uses nor clears the cache). `count == 0` draws nothing.
    public mutating func randn(count: Int) -> [Float] {
        precondition(count >= 0, "TorchGenerator.randn: negative count \(count)")
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fillRandn(buffer)
            initialized = count
        }
    }

    /// `torch.randn(shape)` on this generator, flattened in row-major (C-contiguous) order.
    /// An empty `shape` is a 0-dimensional tensor with one element.
    public mutating func randn(shape: [Int]) -> [Float] {
        randn(count: Self.elementCount(shape))
    }

    /// Fills `buffer` with exactly what `torch.randn(buffer.count elements)` returns, advancing the
    /// generator like that call (see `randn(count:)`). No allocation.
    public mutating func fillRandn(_ buffer: UnsafeMutableBufferPointer<Float>) {
        let count = buffer.count
        guard count > 0, let base = buffer.baseAddress else { return }
        if count < 16 {
            for i in 0..<count {
                base[i] = Float(nextDoubleNormal())
            }
            return
        }
        // normal_fill: count uniforms, transform full blocks, then redo the last 16 from fresh draws.
        fillUniforms(base, count: count)
        let fullBlocks = count / 16
        for b in 0..<fullBlocks {
            Self.boxMuller16(base + 16 * b)
        }
        if count % 16 != 0 {
            let tail = base + (count - 16)
            fillUniforms(tail, count: 16)
            Self.boxMuller16(tail)
        }
    }

    /// `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` as float32, flattened in
    /// row-major order.
    public static func randn(shape: [Int], seed: UInt64) -> [Float] {
        var generator = TorchGenerator(seed: seed)
        return generator.randn(shape: shape)
    }

    /// One raw 32-bit engine output (`CPUGeneratorImpl::random()`).
    public mutating func nextUInt32() -> UInt32 {
        if index >= Self.n {
            state.withUnsafeMutableBufferPointer { Self.twist($0.baseAddress!) }
            index = 0
        }
        let y = state[index]
        index += 1
        return Self.temper(y)
    }

    // MARK: - Engine

    private static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "TorchGenerator.randn: negative dimension in \(shape)")
            n *= d
        }
        return n
    }

    @inline(__always)
    private static func temper(_ x: UInt32) -> UInt32 {
        var y = x
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// The standard MT19937 state update over all 624 words.
    private static func twist(_ mt: UnsafeMutablePointer<UInt32>) {
        @inline(__always)
        func mix(_ cur: UInt32, _ next: UInt32, _ far: UInt32) -> UInt32 {
            let y = (cur & 0x8000_0000) | (next & 0x7FFF_FFFF)
            return far ^ (y >> 1) ^ ((0 &- (next & 1)) & 0x9908_B0DF)
        }
        let n = Self.n, m = Self.m
        for i in 0..<(n - m) {
            mt[i] = mix(mt[i], mt[i + 1], mt[i + m])
        }
        for i in (n - m)..<(n - 1) {
            mt[i] = mix(mt[i], mt[i + 1], mt[i + m - n])
        }
        mt[n - 1] = mix(mt[n - 1], mt[0], mt[m - 1])
    }

    /// `count` float32 uniforms in [0, 1): one draw each, `Float(draw & 0xFFFFFF) * 2^-24` (exact).
    private mutating func fillUniforms(_ out: UnsafeMutablePointer<Float>, count: Int) {
        var idx = index
        state.withUnsafeMutableBufferPointer { buffer in
            let mt = buffer.baseAddress!
            var done = 0
            while done < count {
                if idx >= Self.n {
                    Self.twist(mt)
                    idx = 0
                }
                let take = min(Self.n - idx, count - done)
                let src = mt + idx
                let dst = out + done
                for k in 0..<take {
                    let y = Self.temper(src[k]) & 0x00FF_FFFF
                    dst[k] = Float(Int32(bitPattern: y)) * 0x1p-24
                }
                idx += take
                done += take
            }
        }
        index = idx
    }

    // MARK: - Small tensors: at::normal_distribution<double>

    /// at::uniform_real_distribution<double>(0, 1): the low 53 bits of random64() (first draw in the high
    /// word) times 2^-53.
    @inline(__always)
    private mutating func nextDoubleUniform() -> Double {
        let hi = UInt64(nextUInt32())
        let lo = UInt64(nextUInt32())
        let v = ((hi << 32) | lo) & ((1 << 53) - 1)
        return Double(v) * 0x1p-53
    }

    /// One value of at::normal_distribution<double>(0, 1), using and refilling the generator's cache.
    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedDoubleNormal {
            cachedDoubleNormal = nil
            return cached * 1.0 + 0.0  // transformation::normal(x, mean 0, std 1): -0 becomes +0
        }
        let u1 = nextDoubleUniform()
        let u2 = nextDoubleUniform()
        let r = (-2.0 * TorchLibm.log1p(-u2)).squareRoot()
        let theta = 2.0 * 3.141592653589793 * u1
        cachedDoubleNormal = r * TorchLibm.sin(theta)
        return r * TorchLibm.cos(theta) * 1.0 + 0.0
    }

    // MARK: - Large tensors: NormalFill16<float> (AVX2 variant, as compiled in torch 2.13)

    private typealias V = SIMD8<Float>
    private typealias VI = SIMD8<Int32>

    /// IEEE float32 fused multiply-add a*b + c, rounded once (vfmadd...ps).
    @inline(__always)
    private static func fma(_ a: V, _ b: V, _ c: V) -> V {
        #if arch(x86_64) || arch(i386)
        // Swift compiles x86 code for a baseline CPU without FMA, where `addingProduct` becomes one libm
        // `fmaf` call per lane (the whole fill then runs ~3x slower). Evaluate it in Double instead and
        // fall back to the real thing in the rare case where that could round differently.
        if let lo = fmaViaDouble(a.lowHalf, b.lowHalf, c.lowHalf),
           let hi = fmaViaDouble(a.highHalf, b.highHalf, c.highHalf) {
            return V(lowHalf: lo, highHalf: hi)
        }
        #endif
        return c.addingProduct(a, b)
    }

    #if arch(x86_64) || arch(i386)
    /// Float(a*b + c) computed through Double, or nil where that might differ from the fused float32
    /// result. The product of two floats is exact in Double (24 + 24 <= 53 bits), so the only rounding
    /// error is double rounding: RN_double(x) then RN_float. That differs from RN_float(x) only if
    /// RN_double(x) is exactly halfway between two floats (RN_double is monotonic and those midpoints are
    /// doubles), i.e. its low 29 mantissa bits are 1 followed by 28 zeros, or if the result is in the
    /// float subnormal range, where the midpoints sit elsewhere. Both are checked; in this kernel the
    /// fallback is taken for about 1 in 10^5 half-vectors.
    @inline(__always)
    private static func fmaViaDouble(
        _ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>
    ) -> SIMD4<Float>? {
        let s = SIMD4<Double>(a) * SIMD4<Double>(b) + SIMD4<Double>(c)
        let words = unsafeBitCast(s, to: SIMD8<UInt32>.self)  // little-endian: low words are even lanes
        let low = SIMD4<UInt32>(words[0], words[2], words[4], words[6])
        let high = SIMD4<UInt32>(words[1], words[3], words[5], words[7]) & 0x7FFF_FFFF
        // midpoint: low 29 bits == 1 << 28. tiny: 0 < |s| < 2^-126, i.e. 0 < high word < 0x38100000 (a
        // nonzero |s| here is at least 2^-298, so its high word is nonzero).
        let suspect = ((low & 0x1FFF_FFFF) .== 0x1000_0000) .| ((high &- 1) .< 0x380F_FFFF)
        if any(suspect) { return nil }
        return SIMD4<Float>(s)
    }
    #endif

    @inline(__always)
    private static func bits(_ v: V) -> VI { unsafeBitCast(v, to: VI.self) }

    @inline(__always)
    private static func float(bits v: VI) -> V { unsafeBitCast(v, to: V.self) }

    @inline(__always)
    private static func splat(_ bits: UInt32) -> V { V(repeating: Float(bitPattern: bits)) }

    /// Box-Muller on 16 uniforms in place: u = p[j], w = p[j+8] for j in 0..<8;
    /// p[j] = sqrt(-2 log(1-u)) cos(2 pi w), p[j+8] = sqrt(-2 log(1-u)) sin(2 pi w).
    /// (Internal rather than private so tests can push chosen uniforms through the kernel.)
    @inline(__always)
    static func boxMuller16(_ p: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(p)
        let u = raw.loadUnaligned(as: V.self)
        let w = raw.loadUnaligned(fromByteOffset: 32, as: V.self)
        let radius = (V(repeating: -2) * log256(V(repeating: 1) - u)).squareRoot()
        let theta = splat(0x40C9_0FDB) * w  // float(2 pi) * w
        let (s, c) = sincos256(theta)
        // fma(radius * C, std = 1, mean = 0): the product is exact, the +0 turns -0 into +0.
        raw.storeBytes(of: radius * c + V(repeating: 0), as: V.self)
        raw.storeBytes(of: radius * s + V(repeating: 0), toByteOffset: 32, as: V.self)
    }

    /// avx_mathfun.h `log256_ps`, op for op, with GCC's FMA contractions. The input is 1 - u with
    /// u in [0, 1 - 2^-24], i.e. in [2^-24, 1], so the FLT_MIN clamp and the x <= 0 NaN mask of the
    /// original are no-ops and are left out.
    @inline(__always)
    private static func log256(_ input: V) -> V {
        let one = V(repeating: 1)
        let zero = V(repeating: 0)
        let ib = bits(input)
        // imm0 = (bits >> 23) - 127; e = float(imm0) + 1. The biased exponent (103...127 here) is
        // converted with the 2^23 trick, which is exact, so e has exactly the value float(imm0) + 1 has.
        let biased = float(bits: (ib &>> 23) | 0x4B00_0000) - V(repeating: 0x1p23)
        var x = float(bits: (ib & Int32(bitPattern: 0x807F_FFFF)) | 0x3F00_0000)
        var e = (biased - V(repeating: 127)) + one
        let mask = x .< splat(0x3F35_04F3)  // SQRTHF
        let tmp = zero.replacing(with: x, where: mask)
        x = x - one
        e = e - zero.replacing(with: one, where: mask)
        x = x + tmp
        let z = x * x
        var y = splat(0x3D90_21BB)  // P0
        y = fma(y, x, splat(0xBDEB_D1B8))  // P1
        y = fma(y, x, splat(0x3DEF_251A))  // P2
        y = fma(y, x, splat(0xBDFE_5D4F))  // P3
        y = fma(y, x, splat(0x3E11_E9BF))  // P4
        y = fma(y, x, splat(0xBE2A_AE50))  // P5
        y = fma(y, x, splat(0x3E4C_CEAC))  // P6
        y = fma(y, x, splat(0xBE7F_FFFC))  // P7
        y = fma(y, x, splat(0x3EAA_AAAA))  // P8
        y = y * x
        y = fma(y, z, e * splat(0xB95E_8083))  // + e * Q1 (product rounded on its own)
        // The last two FMAs of the binary have exact products (z >= 2^-48 or 0, so z/2 is exact; e is an
        // integer of at most 5 bits and Q2 has 9 significant bits), so a plain multiply then add rounds
        // exactly like the fused operation.
        y = y + (-z) * V(repeating: 0.5)  // fma(-z, 0.5, y)
        x = x + y
        return x + e * splat(0x3F31_8000)  // fma(e, Q2, x)
    }

    /// avx_mathfun.h `sincos256_ps`, op for op, with GCC's FMA contractions. The input is
    /// float(2 pi) * w with w in [0, 1), so it is never negative and the sign-of-input handling of the
    /// original (abs, sign into the sine) is a no-op and is left out. Returns (sin, cos).
    @inline(__always)
    private static func sincos256(_ input: V) -> (V, V) {
        let zero = V(repeating: 0)
        let x0 = input
        let y = x0 * splat(0x3FA2_F983)  // * FOPI (4/pi)
        // j = cvttps2dq(y), i.e. trunc(y), for y in [0, 8): y + 2^23 rounds y to the nearest integer
        // (exactly), whose value is in the low mantissa bits; subtract 1 where that rounded up.
        let magic = V(repeating: 0x1p23)
        let shifted = y + magic
        let nearest = shifted - magic
        var j = bits(shifted) &- 0x4B00_0000
        j = j.replacing(with: j &- 1, where: nearest .> y)
        j = (j &+ 1) & ~1  // 0, 2, 4, 6 or 8
        let yf = float(bits: j | 0x4B00_0000) - magic  // float(j), exact
        let swapSign = (j & 4) &<< 29
        let polyMask = (j & 2) .== 0
        // The DP1 and DP2 FMAs have exact products (j has at most 2 significant bits, DP1 8 and DP2 12),
        // so multiply-then-add rounds like the fused operation; the DP3 fusion matters.
        var x = x0 + yf * splat(0xBF49_0000)  // fma(yf, DP1, x)
        x = x + yf * splat(0xB97D_A000)  // fma(yf, DP2, x)
        x = fma(yf, splat(0xB322_2169), x)  // DP3
        let signCos = (~(j &- 2) & 4) &<< 29
        let z = x * x
        var yc = fma(splat(0x37CC_F5CE), z, splat(0xBAB6_061A))  // C0 * z + C1
        yc = fma(yc, z, splat(0x3D2A_AAA5))  // + C2
        yc = yc * z
        yc = fma(yc, z, -(z * V(repeating: 0.5)))
        yc = yc + V(repeating: 1)
        var ys = fma(splat(0xB94C_A1F9), z, splat(0x3C08_839E))  // S0 * z + S1
        ys = fma(ys, z, splat(0xBE2A_AAA3))  // + S2
        ys = ys * z
        ys = fma(ys, x, x)
        // Select as the SIMD code does (mask, subtract, add), which maps -0 to +0.
        let ysin2 = zero.replacing(with: ys, where: polyMask)
        let ysin1 = yc.replacing(with: zero, where: polyMask)
        ys = ys - ysin2
        yc = yc - ysin1
        let s = ysin1 + ysin2
        let c = yc + ys
        return (float(bits: bits(s) ^ swapSign), float(bits: bits(c) ^ signCos))
    }
}

// MARK: - Double-precision libm pieces for the small-tensor path

/// log1p, sin and cos in Double, written out so that the file needs nothing beyond the standard library.
/// `log1p` is glibc's `sysdeps/ieee754/dbl-64/s_log1p.c` (fdlibm with Shimizu's reordering) operation for
/// operation; `sin`/`cos` are fdlibm/FreeBSD msun (`k_sin.c`, `k_cos.c`, the medium case of
/// `e_rem_pio2.c`), accurate to < 1 ulp. Only the argument ranges used here are supported:
/// `log1p` on (-1, 0], `sin`/`cos` on [0, 2^19 pi/2).
private enum TorchLibm {
    @inline(__always)
    static func high(_ x: Double) -> Int32 { Int32(truncatingIfNeeded: Int64(bitPattern: x.bitPattern) >> 32) }

    @inline(__always)
    static func withHigh(_ x: Double, _ hi: Int32) -> Double {
        Double(bitPattern: (UInt64(UInt32(bitPattern: hi)) << 32) | (x.bitPattern & 0xFFFF_FFFF))
    }

    static func log1p(_ x: Double) -> Double {
        let ln2Hi = 6.93147180369123816490e-01  // 3fe62e42 fee00000
        let ln2Lo = 1.90821492927058770002e-10  // 3dea39ef 35793c76
        let lp1 = 6.666666666666735130e-01  // 3FE55555 55555593
        let lp2 = 3.999999999940941908e-01  // 3FD99999 9997FA04
        let lp3 = 2.857142874366239149e-01  // 3FD24924 94229359
        let lp4 = 2.222219843214978396e-01  // 3FCC71C5 1D8E78AF
        let lp5 = 1.818357216161805012e-01  // 3FC74664 96CB03DE
        let lp6 = 1.531383769920937332e-01  // 3FC39A09 D078C69F
        let lp7 = 1.479819860511658591e-01  // 3FC2F112 DF3E5244

        let hx = high(x)
        let ax = hx & 0x7FFF_FFFF
        var k: Int32 = 1
        var f = 0.0
        var c = 0.0
        var hu: Int32 = 0
        if hx < 0x3FDA_827A {  // x < 0.41422
            if ax >= 0x3FF0_0000 {  // x <= -1.0
                return x == -1.0 ? -Double.infinity : Double.nan
            }
            if ax < 0x3E20_0000 {  // |x| < 2**-29
                if ax < 0x3C90_0000 { return x }  // |x| < 2**-54
                return x - x * x * 0.5
            }
            if hx > 0 || hx <= Int32(bitPattern: 0xBFD2_BEC3) {  // -0.2929 < x < 0.41422
                k = 0
                f = x
                hu = 1
            }
        } else if hx >= 0x7FF0_0000 {
            return x + x
        }
        if k != 0 {
            var u: Double
            if hx < 0x4340_0000 {
                u = 1.0 + x
                hu = high(u)
                k = (hu >> 20) - 1023
                c = (k > 0) ? 1.0 - (u - x) : x - (u - 1.0)  // correction term
                c /= u
            } else {
                u = x
                hu = high(u)
                k = (hu >> 20) - 1023
                c = 0
            }
            hu &= 0x000F_FFFF
            if hu < 0x6A09E {
                u = withHigh(u, hu | 0x3FF0_0000)  // normalize u
            } else {
                k += 1
                u = withHigh(u, hu | 0x3FE0_0000)  // normalize u/2
                hu = (0x0010_0000 - hu) >> 2
            }
            f = u - 1.0
        }
        let hfsq = 0.5 * f * f
        let dk = Double(k)
        if hu == 0 {  // |f| < 2**-20
            if f == 0 {
                if k == 0 { return 0 }
                c += dk * ln2Lo
                return dk * ln2Hi + c
            }
            let r = hfsq * (1.0 - 0.66666666666666666 * f)
            if k == 0 { return f - r }
            return dk * ln2Hi - ((r - (dk * ln2Lo + c)) - f)
        }
        let s = f / (2.0 + f)
        let z = s * s
        let r1 = z * lp1
        let z2 = z * z
        let r2 = lp2 + z * lp3
        let z4 = z2 * z2
        let r3 = lp4 + z * lp5
        let z6 = z4 * z2
        let r4 = lp6 + z * lp7
        let r = r1 + z2 * r2 + z4 * r3 + z6 * r4
        if k == 0 { return f - (hfsq - s * (hfsq + r)) }
        return dk * ln2Hi - ((hfsq - (s * (hfsq + r) + (dk * ln2Lo + c))) - f)
    }

    /// fdlibm __kernel_sin on [-pi/4, pi/4]; y is the tail of x, iy == 0 means y is 0.
    static func kernelSin(_ x: Double, _ y: Double, _ iy: Int) -> Double {
        let s1 = -1.66666666666666324348e-01  // 0xBFC55555, 0x55555549
        let s2 = 8.33333333332248946124e-03  // 0x3F811111, 0x1110F8A6
        let s3 = -1.98412698298579493134e-04  // 0xBF2A01A0, 0x19C161D5
        let s4 = 2.75573137070700676789e-06  // 0x3EC71DE3, 0x57B1FE7D
        let s5 = -2.50507602534068634195e-08  // 0xBE5AE5E6, 0x8A2B9CEB
        let s6 = 1.58969099521155010221e-10  // 0x3DE5D93A, 0x5ACFD57C
        let z = x * x
        let w = z * z
        let r = s2 + z * (s3 + z * s4) + z * w * (s5 + z * s6)
        let v = z * x
        if iy == 0 { return x + v * (s1 + z * r) }
        return x - ((z * (0.5 * y - v * r) - y) - v * s1)
    }

    /// fdlibm __kernel_cos on [-pi/4, pi/4]; y is the tail of x.
    static func kernelCos(_ x: Double, _ y: Double) -> Double {
        let c1 = 4.16666666666666019037e-02  // 0x3FA55555, 0x5555554C
        let c2 = -1.38888888888741095749e-03  // 0xBF56C16C, 0x16C15177
        let c3 = 2.48015872894767294178e-05  // 0x3EFA01A0, 0x19CB1590
        let c4 = -2.75573143513906633035e-07  // 0xBE927E4F, 0x809C52AD
        let c5 = 2.08757232129817482790e-09  // 0x3E21EE9E, 0xBDB4B1C4
        let c6 = -1.13596475577881948265e-11  // 0xBDA8FAE9, 0xBE8838D4
        let z = x * x
        var w = z * z
        let r = z * (c1 + z * (c2 + z * c3)) + w * w * (c4 + z * (c5 + z * c6))
        let hz = 0.5 * z
        w = 1.0 - hz
        return w + (((1.0 - w) - hz) + (z * r - x * y))
    }

    /// x - n pi/2 as y0 + y1 (medium case of fdlibm's __ieee754_rem_pio2, for 0 <= x < 2^19 pi/2).
    static func remPio2(_ x: Double) -> (n: Int, y0: Double, y1: Double) {
        let invpio2 = 6.36619772367581382433e-01  // 0x3FE45F30, 0x6DC9C883
        let pio2_1 = 1.57079632673412561417e+00  // 0x3FF921FB, 0x54400000
        let pio2_1t = 6.07710050650619224932e-11  // 0x3DD0B461, 0x1A626331
        let pio2_2 = 6.07710050630396597660e-11  // 0x3DD0B461, 0x1A600000
        let pio2_2t = 2.02226624879595063154e-21  // 0x3BA3198A, 0x2E037073
        let pio2_3 = 2.02226624871116645580e-21  // 0x3BA3198A, 0x2E000000
        let pio2_3t = 8.47842766036889956997e-32  // 0x397B839A, 0x252049C1
        let ix = high(x) & 0x7FFF_FFFF
        let fn = (x * invpio2 + 0x1.8p52) - 0x1.8p52  // rint, round-to-nearest
        let n = Int(fn)
        var r = x - fn * pio2_1
        var w = fn * pio2_1t  // 1st round, good to 85 bits
        let j = ix >> 20
        var y0 = r - w
        var i = j - ((high(y0) >> 20) & 0x7FF)
        if i > 16 {  // 2nd round, good to 118 bits
            var t = r
            w = fn * pio2_2
            r = t - w
            w = fn * pio2_2t - ((t - r) - w)
            y0 = r - w
            i = j - ((high(y0) >> 20) & 0x7FF)
            if i > 49 {  // 3rd round, good to 151 bits, covers all cases
                t = r
                w = fn * pio2_3
                r = t - w
                w = fn * pio2_3t - ((t - r) - w)
                y0 = r - w
            }
        }
        let y1 = (r - y0) - w
        return (n, y0, y1)
    }

    static func sin(_ x: Double) -> Double {
        let ix = high(x) & 0x7FFF_FFFF
        if ix <= 0x3FE9_21FB {  // |x| ~< pi/4
            if ix < 0x3E40_0000 { return x }  // |x| < 2**-27
            return kernelSin(x, 0, 0)
        }
        let (n, y0, y1) = remPio2(x)
        switch n & 3 {
        case 0: return kernelSin(y0, y1, 1)
        case 1: return kernelCos(y0, y1)
        case 2: return -kernelSin(y0, y1, 1)
        default: return -kernelCos(y0, y1)
        }
    }

    static func cos(_ x: Double) -> Double {
        let ix = high(x) & 0x7FFF_FFFF
        if ix <= 0x3FE9_21FB {  // |x| ~< pi/4
            if ix < 0x3E40_0000 { return 1.0 }  // |x| < 2**-27
            return kernelCos(x, 0)
        }
        let (n, y0, y1) = remPio2(x)
        switch n & 3 {
        case 0: return kernelCos(y0, y1)
        case 1: return -kernelSin(y0, y1, 1)
        case 2: return -kernelCos(y0, y1)
        default: return kernelSin(y0, y1, 1)
        }
    }
}
