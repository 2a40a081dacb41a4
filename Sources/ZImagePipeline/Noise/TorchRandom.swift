// TorchRandom.swift
//
// A bit-exact, dependency-free re-implementation of PyTorch's CPU random normal fill:
//
//     torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
//
// matching torch 2.13 on x86-64 Linux (the AVX2 kernel, which AVX-512 machines also use), including
// the generator state carried from one call to the next.
//
// Recipe:
//   * Engine: at::mt19937, standard MT19937 seeded with init_genrand(seed & 0xFFFF_FFFF).
//   * numel >= 16: "normal_fill". Write numel float32 uniforms (low 24 bits of one draw * 2^-24), then
//     run Box-Muller in place on blocks of 16, slot j paired with slot j+8 (cos -> j, sin -> j+8), using
//     the float32 Cephes log/sincos of avx_mathfun.h with the multiply-adds GCC fused into FMAs. When
//     numel % 16 != 0 the last 16 slots are refilled from 16 fresh draws and transformed again.
//   * numel < 16: at::normal_distribution<double>: double Box-Muller from 53-bit uniforms (2 draws
//     each), log1p/sin/cos in double, the second value of each pair cached in the generator across calls.
//
// Everything here uses only the Swift standard library. The float32 block transform is a sequence of
// IEEE-754 binary32 operations (fused exactly where torch's binary has an FMA, plain `*`/`+` elsewhere),
// so it gives the same bits on every platform. The double-precision small-tensor path needs log1p and
// sincos: both are ports of the glibc code (FMA build) that torch calls on x86-64 Linux, see TorchLibm.

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
/// Platforms: the output is the same on every platform and equals what x86-64 Linux torch (AVX2 or
/// AVX-512 CPU, the usual case) produces. torch builds without that kernel (Apple Silicon/ARM, or
/// `ATEN_CPU_CAPABILITY=default`) compute the >= 16-element transform with the platform's `logf`/`sincosf`
/// and give slightly different values (about 38% of elements differ, by up to ~2e-6); this type does not
/// reproduce those.
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
        let theta = 2.0 * 3.141592653589793 * u1  // 2 * c10::pi<double> * u1
        let (sinTheta, cosTheta) = TorchLibm.sincos(theta)
        cachedDoubleNormal = r * sinTheta
        return r * cosTheta * 1.0 + 0.0
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

// MARK: - Double-precision libm for the small-tensor path

/// `log1p` and `sincos` in Double, exactly as glibc computes them on x86-64 machines with FMA, which is
/// what torch calls there for tensors of fewer than 16 elements.
///
/// glibc picks these variants at load time on any CPU with FMA/AVX2 (every machine torch's AVX2 kernel
/// runs on): `sysdeps/ieee754/dbl-64/s_sincos.c` + `s_sin.c` (IBM Accurate Mathematical Library, built as
/// `s_sincos-fma.c` with `-mfma -mavx2`) and `s_log1p.c` (fdlibm, built as `s_log1p-fma.c`; upstream in
/// 2.39, backported to the 2.36 branch that Debian 12 ships). GCC contracted some multiply-adds of those
/// C sources into FMAs; each `fma(...)` below is one of those, every other operation is a plain IEEE
/// double operation in the order of the C source. Checked bit for bit against Debian's glibc 2.36 on the
/// argument ranges used here (`log1p` on (-1, 0], `sincos` on [0, 2 pi)); `sincos` supports
/// |x| < 105414350 only (glibc's `__branred` path for larger arguments is not ported).
///
/// Older glibc builds without the FMA `log1p` (and non-glibc platforms) may differ from this in the last
/// bit of a double now and then; after the final rounding to Float that shows up only with probability
/// around 1e-9 per value.
private enum TorchLibm {
    /// a * b + c rounded once.
    @inline(__always)
    static func fma(_ a: Double, _ b: Double, _ c: Double) -> Double { c.addingProduct(a, b) }

    /// The high 32 bits of x as a signed integer (GET_HIGH_WORD).
    @inline(__always)
    static func high(_ x: Double) -> Int32 { Int32(truncatingIfNeeded: Int64(bitPattern: x.bitPattern) >> 32) }

    /// x with its high 32 bits replaced (SET_HIGH_WORD).
    @inline(__always)
    static func withHigh(_ x: Double, _ hi: Int32) -> Double {
        Double(bitPattern: (UInt64(UInt32(bitPattern: hi)) << 32) | (x.bitPattern & 0xFFFF_FFFF))
    }

    // MARK: log1p (glibc sysdeps/ieee754/dbl-64/s_log1p.c, FMA build)

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
                return fma(-(x * x), 0.5, x)  // x - x * x * 0.5
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
                c = fma(dk, ln2Lo, c)
                return fma(dk, ln2Hi, c)
            }
            let r = hfsq * fma(-f, 0.66666666666666666, 1.0)  // hfsq * (1.0 - 0.666... * f)
            if k == 0 { return f - r }
            return fma(dk, ln2Hi, -((r - fma(dk, ln2Lo, c)) - f))
        }
        let s = f / (2.0 + f)
        let z = s * s
        let z2 = z * z
        let r2 = fma(z, lp3, lp2)
        let z4 = z2 * z2
        let r3 = fma(z, lp5, lp4)
        let z6 = z4 * z2
        let r4 = fma(z, lp7, lp6)
        // R = R1 + z2 * R2 + z4 * R3 + z6 * R4 with R1 = z * Lp1
        let r = fma(z6, r4, fma(z4, r3, fma(z, lp1, z2 * r2)))
        if k == 0 { return f - (hfsq - s * (hfsq + r)) }
        return fma(dk, ln2Hi, -((hfsq - (s * (hfsq + r) + fma(dk, ln2Lo, c))) - f))
    }

    // MARK: sincos (glibc sysdeps/ieee754/dbl-64/s_sincos.c and s_sin.c, FMA build)

    static let s1 = -0x1.5555555555555p-3
    static let s2 = 0x1.1111111110ECEp-7
    static let s3 = -0x1.A01A019DB08B8p-13
    static let s4 = 0x1.71DE27B9A7ED9p-19
    static let s5 = -0x1.ADDFFC2FCDF59p-26
    static let big = 0x1.8000000000000p45
    static let hp0 = 0x1.921FB54442D18p0
    static let hp1 = 0x1.1A62633145C07p-54
    static let mp1 = 0x1.921FB58000000p0
    static let mp2 = -0x1.DDE973C000000p-27
    static let pp3 = -0x1.CB3B398000000p-55
    static let pp4 = -0x1.d747f23e32ed7p-83
    static let hpinv = 0x1.45F306DC9C883p-1
    static let toint = 0x1.8000000000000p52
    static let sn3 = -1.66666666666664880952546298448555E-01
    static let sn5 = 8.33333214285722277379541354343671E-03
    static let cs2 = 4.99999999999999999999950396842453E-01
    static let cs4 = -4.16666666666664434524222570944589E-02
    static let cs6 = 1.38888874007937613028114285595617E-03

    /// (sin(x), cos(x)) as glibc's `sincos`; x must satisfy |x| < 105414350.
    static func sincos(_ x: Double) -> (Double, Double) {
        let k = high(x) & 0x7FFF_FFFF
        if k < 0x4003_68FD {  // |x| < 2.426265
            if k < 0x3E40_0000 { return (x, 1.0) }  // |x| < 2^-27
            if k < 0x3FEB_6000 { return (doSin(x, 0), doCos(x, 0)) }  // |x| < 0.855469
            let y = hp0 - x.magnitude
            let a = y + hp1
            let da = (y - a) + hp1
            return (Double(signOf: x, magnitudeOf: doCos(a, da)), doSin(a, da))
        }
        precondition(k < 0x4199_21FB, "TorchLibm.sincos: argument out of range")
        var (n, a, da) = reduceSincos(x)
        n &= 3
        if n == 1 || n == 2 {
            a = -a
            da = -da
        }
        let sinValue = doSin(a, da)
        let c = doCos(a, da)
        let cosValue = (n & 2) != 0 ? -c : c
        // For odd n the two outputs trade places.
        return (n & 1) != 0 ? (cosValue, sinValue) : (sinValue, cosValue)
    }

    /// x - n pi/2 as a + da, and n mod 4 (reduce_sincos).
    @inline(__always)
    static func reduceSincos(_ x: Double) -> (Int, Double, Double) {
        let t = fma(x, hpinv, toint)
        let xn = t - toint
        let y = fma(-xn, mp2, fma(-xn, mp1, x))  // (x - xn * mp1) - xn * mp2
        let n = Int(UInt32(truncatingIfNeeded: t.bitPattern) & 3)
        // t1 = xn * pp3; t2 = y - t1; db = (y - t2) - t1  (both uses of t1 fused)
        let t2 = fma(-xn, pp3, y)
        var db = fma(-xn, pp3, y - t2)
        // t1 = xn * pp4; b = t2 - t1; db += (t2 - b) - t1
        let b = fma(-xn, pp4, t2)
        db = db + fma(-xn, pp4, t2 - b)
        return (n, b, db)
    }

    /// sin(x + dx) (do_sin).
    @inline(__always)
    static func doSin(_ x0: Double, _ dx0: Double) -> Double {
        if x0.magnitude < 0.126 {
            // TAYLOR_SIN(x * x, x, dx)
            let xx = x0 * x0
            let poly = fma(fma(fma(fma(s5, xx, s4), xx, s3), xx, s2), xx, s1)
            let t = fma(fma(poly, x0, -(0.5 * dx0)), xx, dx0)
            return x0 + t
        }
        let dx = x0 <= 0 ? -dx0 : dx0
        let u = big + x0.magnitude
        let x = x0.magnitude - (u - big)
        let xx = x * x
        let s = x + fma(x * xx, fma(xx, sn5, sn3), dx)  // x + (dx + x * xx * (sn3 + xx * sn5))
        let c = fma(x, dx, xx * fma(xx, fma(xx, cs6, cs4), cs2))  // x * dx + xx * (cs2 + ...)
        let i = Int(UInt32(truncatingIfNeeded: u.bitPattern)) << 2
        let sn = sincosTable[i], ssn = sincosTable[i + 1]
        let cs = sincosTable[i + 2], ccs = sincosTable[i + 3]
        let cor = fma(cs, s, fma(-sn, c, fma(s, ccs, ssn)))  // (ssn + s * ccs - sn * c) + cs * s
        return Double(signOf: x0, magnitudeOf: sn + cor)
    }

    /// cos(x + dx) (do_cos).
    @inline(__always)
    static func doCos(_ x0: Double, _ dx0: Double) -> Double {
        let dx = x0 < 0 ? -dx0 : dx0
        let u = big + x0.magnitude
        let x = x0.magnitude - (u - big) + dx
        let xx = x * x
        let s = fma(x * xx, fma(xx, sn5, sn3), x)  // x + x * xx * (sn3 + xx * sn5)
        let c = xx * fma(xx, fma(xx, cs6, cs4), cs2)  // xx * (cs2 + xx * (cs4 + xx * cs6))
        let i = Int(UInt32(truncatingIfNeeded: u.bitPattern)) << 2
        let sn = sincosTable[i], ssn = sincosTable[i + 1]
        let cs = sincosTable[i + 2], ccs = sincosTable[i + 3]
        let cor = fma(-sn, s, fma(-cs, c, fma(-s, ssn, ccs)))  // (ccs - s * ssn - cs * c) - sn * s
        return cs + cor
    }

    /// glibc's `__sincostab` (sysdeps/ieee754/dbl-64/sincostab.c): for i = 0..<110, entries 4i..4i+3 are
    /// sin(i/128) split as sn + ssn and cos(i/128) split as cs + ccs.
    static let sincosTable: [Double] = sincosTableBits.map { Double(bitPattern: $0) }

    static let sincosTableBits: [UInt64] = [
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x3FF0_0000_0000_0000, 0x0000_0000_0000_0000,
        0x3F7F_FFEA_AAAE_EEEF, 0xBC1E_45E2_EC67_B77C, 0x3FEF_FFC0_0015_5552, 0x3C8F_4A01_A019_6DAE,
        0x3F8F_FFAA_AAEE_EED5, 0xBC02_AB63_9A9F_0777, 0x3FEF_FF00_0155_549F, 0x3C82_8A28_A03A_5EF3,
        0x3F97_FF70_0103_3255, 0x3BFE_FE2B_5152_7336, 0x3FEF_FDC0_06BF_F7E6, 0x3C8A_E6DA_E869_77BD,
        0x3F9F_FEAA_AEEE_E86F, 0xBC3C_D406_FB22_4AE2, 0x3FEF_FC00_1555_27D3, 0xBC83_B544_92D8_9B5B,
        0x3FA3_FEB2_B12D_45D5, 0x3C34_EC54_203D_1C11, 0x3FEF_F9C0_3414_A7BA, 0x3C69_91F4_BE6C_59BF,
        0x3FA7_FDC0_1032_FBA9, 0xBC45_99BD_F46E_997A, 0x3FEF_F700_6BFD_F99F, 0xBC78_B3B5_6064_8D5F,
        0x3FAB_FC6D_7858_6DAC, 0x3C18_E4FD_03DB_F236, 0x3FEF_F3C0_C810_3A31, 0x3C74_856D_BDDC_0E66,
        0x3FAF_FAAA_EEED_4EDB, 0xBC42_D16D_3268_4B69, 0x3FEF_F001_5549_F4D3, 0x3C83_2838_7B99_426F,
        0x3FB1_FC34_3D80_8BEF, 0xBC5F_3D32_E6F3_BE4F, 0x3FEF_EBC2_22A8_EF9F, 0x3C57_9349_34F5_4C77,
        0x3FB3_FACB_12D1_755B, 0xBC59_2191_5299_468C, 0x3FEF_E703_4129_EF6F, 0xBC6C_BF43_37C9_6F97,
        0x3FB5_F911_FD10_B737, 0xBC50_184F_02BE_9102, 0x3FEF_E1C4_C3C8_73EB, 0xBC35_A9C9_057C_4A02,
        0x3FB7_F701_0325_50E4, 0x3C3A_FC2D_1800_501A, 0x3FEF_DC06_BF7E_6B9B, 0x3C83_1902_B535_F8DB,
        0x3FB9_F490_2D55_D1F9, 0x3C52_696D_7EAC_1DC1, 0x3FEF_D5C9_4B43_E000, 0xBC62_E768_CB4F_92F9,
        0x3FBB_F1B7_8568_391D, 0x3C5E_9184_1DEA_4CC8, 0x3FEF_CF0C_800E_99B1, 0x3C6E_A3D7_86D1_86AC,
        0x3FBD_EE6F_16C1_CCE6, 0xBC45_0F8E_2FB7_1673, 0x3FEF_C7D0_78D1_BC88, 0x3C80_75D2_447D_B685,
        0x3FBF_EAAE_EE86_EE36, 0xBC4A_FCB2_BCC6_F03B, 0x3FEF_C015_527D_5BD3, 0x3C8B_68F3_5094_EFB8,
        0x3FC0_F337_8DDD_71D1, 0x3C6D_8468_724F_0F9E, 0x3FEF_B7DB_2BFE_0695, 0x3C82_1DAD_F4F6_5AB1,
        0x3FC1_F0D3_D7AF_CEAF, 0xBC66_EF95_0997_69A5, 0x3FEF_AF22_263C_4BD3, 0xBC55_2ACE_133A_2769,
        0x3FC2_EE28_5E4A_B88F, 0xBC6E_4D0F_05DE_E058, 0x3FEF_A5EA_641C_36F2, 0x3C40_4DA6_ED17_CC7C,
        0x3FC3_EB31_2C5D_66CB, 0x3C64_7D66_6B66_CB91, 0x3FEF_9C34_0A7C_C428, 0x3C8C_5B6B_063B_7462,
        0x3FC4_E7EA_4DC5_F27B, 0x3C59_49DB_2AC0_72FC, 0x3FEF_91FF_4037_4D01, 0xBC67_D03F_4D3A_9E4C,
        0x3FC5_E44F_CFA1_26F3, 0xBC66_F443_063F_89B6, 0x3FEF_874C_2E1E_ECF6, 0xBC8C_6514_E133_2B16,
        0x3FC6_E05D_C05A_4D4C, 0xBBD3_2C5C_8B81_C940, 0x3FEF_7C1A_FEFF_DE24, 0xBC78_F55B_C475_40B1,
        0x3FC7_DC10_2FBA_F2B5, 0x3C45_AB50_E23C_97C3, 0x3FEF_706B_DF9E_CE1C, 0xBC86_98C8_0C36_DCB4,
        0x3FC8_D763_2EFA_A944, 0xBC62_0FA2_62CB_B953, 0x3FEF_643E_FEB8_2ACD, 0x3C76_B00A_C1FE_28AC,
        0x3FC9_D252_D0CE_C312, 0x3C59_C43D_80B1_137D, 0x3FEF_5794_8CFF_6797, 0x3C6E_3A0D_3E03_B1D5,
        0x3FCA_CCDB_297A_0765, 0xBC59_883B_57D6_CDEB, 0x3FEF_4A6C_BD1E_3A79, 0x3C81_3DF0_EDAE_BB57,
        0x3FCB_C6F8_4EDC_6199, 0x3C69_C1A5_6A7B_0CAB, 0x3FEF_3CC7_C3B3_D16E, 0xBC62_1A3A_D28A_3494,
        0x3FCC_C0A6_5882_89A3, 0xBC68_68D0_9BC8_7C6B, 0x3FEF_2EA5_D753_FFED, 0x3C8C_C421_5F56_D583,
        0x3FCD_B9E1_5FB5_A5D0, 0xBC63_2E20_D6CC_6FC2, 0x3FEF_2007_3086_649F, 0x3C7B_9404_16C1_984B,
        0x3FCE_B2A5_7F8A_E5A3, 0xBC60_BE06_AF57_2CEB, 0x3FEF_10EC_09C5_873B, 0x3C8D_9072_762C_1283,
        0x3FCF_AAEE_D4F3_1577, 0xBC61_5D88_508E_32B8, 0x3FEF_0154_9F7D_EEA1, 0x3C8D_3C1E_99E5_CAFD,
        0x3FD0_515C_BF65_155C, 0xBC79_B8C2_9DFD_8EC8, 0x3FEE_F141_300D_2F26, 0xBC82_AA1B_08DE_D372,
        0x3FD0_CD00_CEF3_6436, 0xBC79_FB0A_0C93_E2B5, 0x3FEE_E0B1_FBC0_F11C, 0xBC4B_FD23_80BB_C3B1,
        0x3FD1_4861_AA94_DDEB, 0xBC6B_E881_B5B6_15A4, 0x3FEE_CFA7_44D5_EFA1, 0xBC55_6D0A_4AF5_41D0,
        0x3FD1_C37D_64C6_B876, 0x3C74_6076_FE0D_CFF5, 0x3FEE_BE21_4F76_EFA8, 0xBC80_2F9F_12BA_543E,
        0x3FD2_3E52_111A_AF36, 0xBC74_F080_334E_FF18, 0x3FEE_AC20_61BB_AF4F, 0x3C62_C1D5_3E94_658D,
        0x3FD2_B8DD_C43E_B49F, 0x3C61_5538_99F2_D807, 0x3FEE_99A4_C3A7_CD83, 0xBC82_264B_1BC5_3CE8,
        0x3FD3_331E_9404_9F87, 0x3C7E_0CB6_B40C_302C, 0x3FEE_86AE_BF29_A9ED, 0x3C89_397A_FDBB_58A7,
        0x3FD3_AD12_9769_D3D8, 0x3C00_3D55_0487_8398, 0x3FEE_733E_A019_3D40, 0xBC86_428B_3546_CE13,
        0x3FD4_26B7_E69E_E697, 0xBC7F_09C7_5705_C59F, 0x3FEE_5F54_B436_E9D0, 0x3C87_EB0F_D02F_C8BC,
        0x3FD4_A00C_9B0F_3D20, 0x3C78_23BA_6BB0_8EAD, 0x3FEE_4AF1_4B2A_449C, 0xBC86_8CA0_2E8A_6833,
        0x3FD5_190E_CF68_A77A, 0x3C7B_3571_55EE_F0F3, 0x3FEE_3614_B680_D6A5, 0xBC72_7793_AA01_5237,
        0x3FD5_91BC_9FA2_F597, 0x3C67_C74B_AC3F_E0CB, 0x3FEE_20BF_49AC_D6C1, 0xBC56_60AE_C7EF_636C,
        0x3FD6_0A14_2907_8775, 0x3C5B_1FD8_0BA8_9133, 0x3FEE_0AF1_5A03_DBCE, 0x3C5F_E8E7_0277_1AE6,
        0x3FD6_8213_8A38_D7F7, 0xBC7D_8892_0244_4AAD, 0x3FED_F4AB_3EBD_875E, 0xBC8E_2D8A_7E67_36C4,
        0x3FD6_F9B8_E33A_0255, 0x3C74_2BC1_4EE9_DA0D, 0x3FED_DDED_50F2_28D6, 0xBC6E_80C8_D42B_A2BF,
        0x3FD7_7102_5576_4214, 0xBC66_EAD7_314B_B6CE, 0x3FED_C6B7_EB99_5912, 0x3C54_B364_776D_CD35,
        0x3FD7_E7EE_03C8_6D4E, 0xBC7B_63BC_DABF_5AF2, 0x3FED_AF0B_6B88_8E83, 0x3C8A_249E_2B5E_5CEA,
        0x3FD8_5E7A_1282_6949, 0x3C78_A40E_9B5F_ACE0, 0x3FED_96E8_2F71_A9DC, 0x3C8F_F61B_D5D2_039D,
        0x3FD8_D4A4_A774_992F, 0x3C74_4A02_EA76_6326, 0x3FED_7E4E_97E1_7B4A, 0xBC63_B770_352B_ED94,
        0x3FD9_4A6B_E9F5_46C5, 0xBC76_9CE1_3E68_3F58, 0x3FED_653F_073E_4040, 0xBC87_6236_434B_EC37,
        0x3FD9_BFCE_02E8_0510, 0x3C70_9E39_A320_B0A4, 0x3FED_4BB9_E1C6_19E0, 0x3C8F_34BB_7785_8F61,
        0x3FDA_34C9_1CC5_0CCA, 0xBC5A_310E_3B50_CECD, 0x3FED_31BF_8D8D_7C06, 0x3C7E_60DD_3089_CBDD,
        0x3FDA_A95B_63A0_9277, 0xBC66_293E_B13C_0381, 0x3FED_1750_727D_94F0, 0x3C80_D52B_1EC1_A48E,
        0x3FDB_1D83_0532_1617, 0xBC7A_E242_CB99_F519, 0x3FEC_FC6C_FA52_AD9F, 0x3C88_B5B5_508F_2A0D,
        0x3FDB_913E_30DB_AC43, 0xBC7E_38AD_2F6C_3FF1, 0x3FEC_E115_909A_82E5, 0x3C81_F139_BB31_109A,
        0x3FDC_048B_17B1_40A3, 0x3C61_9FE6_757E_9FA7, 0x3FEC_C54A_A2B2_972E, 0x3C64_EE16_2BA8_3A98,
        0x3FDC_7767_EC7F_D19E, 0xBC5E_B14D_1A3D_5826, 0x3FEC_A90C_9FC6_7D0B, 0xBC64_6A81_485E_3462,
        0x3FDC_E9D2_E3D4_A51F, 0xBC62_FC8A_12DA_E298, 0x3FEC_8C5B_F8CE_1A84, 0x3C7A_B3D1_A159_0123,
        0x3FDD_5BCA_3404_7661, 0x3C72_8A44_A75F_C29C, 0x3FEC_6F39_208B_E53B, 0xBC87_41DB_FBAA_DB42,
        0x3FDD_CD4C_1532_9C9A, 0x3C70_D4C6_E171_FD9A, 0x3FEC_51A4_8B8B_175E, 0xBC61_BBB4_3B9A_A880,
        0x3FDE_3E56_C158_2A69, 0xBC50_A482_1099_F88F, 0x3FEC_339E_B01D_DD81, 0xBC8C_AAF5_EE82_C5C0,
        0x3FDE_AEE8_744B_05F0, 0xBC57_89B4_3C9B_027D, 0x3FEC_1528_065B_7D50, 0xBC88_9211_1312_E828,
        0x3FDF_1EFF_6BC4_F97B, 0x3C71_7212_F8A7_525C, 0x3FEB_F641_081E_7536, 0x3C8B_7BD7_1628_A9A1,
        0x3FDF_8E99_E76A_BC97, 0x3C59_D950_AF2D_00A3, 0x3FEB_D6EA_3102_94F5, 0x3C73_1BBC_C88C_109D,
        0x3FDF_FDB6_28D2_F57A, 0x3C6F_4A99_2E90_5B6A, 0x3FEB_B723_FE63_0F32, 0x3C77_2BD2_452D_0A39,
        0x3FE0_3629_39C6_9955, 0xBC82_D8CD_7839_7B01, 0x3FEB_96EE_EF58_840E, 0x3C54_5A3C_C78F_ADE0,
        0x3FE0_6D36_8694_6E5B, 0x3C83_F5AE_4538_FF1B, 0x3FEB_764B_84B7_04C2, 0xBC8F_5848_C21B_389B,
        0x3FE0_A402_1E9E_1001, 0xBC86_F643_A139_14F6, 0x3FEB_553A_410C_104E, 0x3C58_FF79_4702_7A16,
        0x3FE0_DA8B_26B5_672E, 0xBC8A_58DE_F0BE_E909, 0x3FEB_33BB_A89C_8948, 0x3C8E_A6A5_1D1F_6CA9,
        0x3FE1_10D0_C4B6_9C3B, 0x3C8D_9189_9880_9981, 0x3FEB_11D0_4162_A4C6, 0x3C71_DD56_1EFB_C0C2,
        0x3FE1_46D2_1F8B_7F82, 0x3C7B_F953_5E27_39A8, 0x3FEA_EF78_930B_D275, 0xBC7F_8362_7974_6F94,
        0x3FE1_7C8E_5F2E_EDB0, 0x3C63_5E57_102E_2488, 0x3FEA_CCB5_26F6_9DE5, 0x3C88_FB6A_8DD6_B6CC,
        0x3FE1_B204_ACB0_2FDD, 0xBC5F_190C_70CB_B5FF, 0x3FEA_A986_8830_8913, 0xBC0B_83D6_07CD_5070,
        0x3FE1_E734_3236_574C, 0x3C72_2A3F_A4F4_1D5A, 0x3FEA_85ED_4373_E02D, 0x3C69_BE06_385E_C792,
        0x3FE2_1C1C_1B03_94CF, 0x3C5E_5B32_4B23_AA31, 0x3FEA_61E9_E725_86AF, 0x3C85_8330_E2FD_453F,
        0x3FE2_50BB_9378_8BBB, 0x3C7E_A3D0_2457_BCCE, 0x3FEA_3D7D_0352_BDCF, 0xBC86_8DBA_ECA1_9669,
        0x3FE2_8511_C917_A067, 0xBC80_1DF1_D9A1_6B70, 0x3FEA_18A7_29AE_E445, 0x3C39_5E25_736C_0358,
        0x3FE2_B91D_EA88_421E, 0xBC8F_A371_DB21_6AB0, 0x3FE9_F368_ED91_2F85, 0xBC81_D200_C579_1606,
        0x3FE2_ECDF_279A_3082, 0x3C8D_3557_E0E7_E37E, 0x3FE9_CDC2_E3F2_5E5C, 0x3C83_F991_1299_3F62,
        0x3FE3_2054_B148_BC4F, 0x3C8F_6B42_095A_135B, 0x3FE9_A7B5_A36A_6514, 0x3C87_22CF_CC9F_A7A9,
        0x3FE3_537D_B9BE_0367, 0x3C6B_327E_7AF0_40F0, 0x3FE9_8141_C42E_1310, 0x3C8D_1FF8_0488_F08D,
        0x3FE3_8659_7456_282B, 0xBC71_0FAD_A93B_07A8, 0x3FE9_5A67_E00C_B1FD, 0xBC80_BEFD_A21F_862D,
        0x3FE3_B8E7_15A2_840A, 0xBC79_7653_A7D2_F07B, 0x3FE9_3328_926D_9E92, 0xBC8B_B770_0360_0CDA,
        0x3FE3_EB25_D36C_D53A, 0xBC5B_E570_E157_0FC0, 0x3FE9_0B84_784D_DAF7, 0xBC70_FEB1_0AB9_3B87,
        0x3FE4_1D14_E4BA_6790, 0x3C84_608F_D287_ECF5, 0x3FE8_E37C_303D_9AD1, 0xBC64_63A4_B53D_4BF8,
        0x3FE4_4EB3_81CF_386B, 0xBC83_ED6C_1E6A_5505, 0x3FE8_BB10_5A5D_C900, 0x3C88_63E0_3E94_74C1,
        0x3FE4_8000_E431_159F, 0xBC8B_194A_7463_ED10, 0x3FE8_9241_985D_871F, 0x3C8C_48D9_C413_ED84,
        0x3FE4_B0FC_46AA_B761, 0x3C20_DA05_738C_C59A, 0x3FE8_6910_8D77_A6C6, 0x3C73_38FF_E2BF_E9DD,
        0x3FE4_E1A4_E54E_D51B, 0xBC8A_492F_89B7_C76A, 0x3FE8_3F7D_DE70_1CA0, 0xBC41_52CF_609B_C6E8,
        0x3FE5_11F9_FD7B_351C, 0xBC85_C0E8_61C4_8831, 0x3FE8_158A_3191_6D5D, 0xBC6D_E8B9_0B82_28DE,
        0x3FE5_41FA_CDDB_B724, 0x3C72_32C2_8520_D391, 0x3FE7_EB36_2EAA_1488, 0x3C5A_1D65_A4A5_959F,
        0x3FE5_71A6_966D_59B3, 0x3C5C_843B_4D0F_B198, 0x3FE7_C082_7F09_E54F, 0xBC6C_73D6_D72A_EE68,
        0x3FE5_A0FC_9881_3A12, 0xBC8D_82E2_B7D4_227B, 0x3FE7_956F_CD7F_6543, 0xBC8A_B276_E9D4_5AE4,
        0x3FE5_CFFC_16BF_8F0D, 0x3C89_6CB3_70EB_578A, 0x3FE7_69FE_C655_211F, 0xBC68_27D5_CF8C_68C5,
        0x3FE5_FEA4_552A_9E57, 0x3C80_B6CE_F7EE_20B7, 0x3FE7_3E30_174E_FBA1, 0xBC65_D3AE_3D94_AD5F,
        0x3FE6_2CF4_9921_AC79, 0xBC8E_DD98_55B6_241A, 0x3FE7_1204_6FA7_7678, 0x3C84_25B0_A502_9C81,
        0x3FE6_5AEC_2963_E755, 0x3C81_26F9_6B71_053C, 0x3FE6_E57C_800C_F55E, 0x3C86_0286_DEDB_D0A6,
        0x3FE6_888A_4E13_4B2F, 0xBC86_B7D3_7644_D5E6, 0x3FE6_B898_FA9E_FB5D, 0x3C71_5AC7_86CC_F4B2,
        0x3FE6_B5CE_50B7_821A, 0xBC65_D515_8F70_2E0F, 0x3FE6_8B5A_92EB_6253, 0xBC89_A91A_D985_F89C,
        0x3FE6_E2B7_7C40_BDE1, 0xBC70_E729_857F_AD53, 0x3FE6_5DC1_FDEB_8CBA, 0xBC59_7C1B_4733_7C77,
        0x3FE7_0F45_1D0A_8C40, 0x3C69_7EDE_3885_770D, 0x3FE6_2FCF_F201_91C7, 0x3C6D_9143_8957_56EF,
        0x3FE7_3B76_80DE_A578, 0xBC72_2483_06DC_12A2, 0x3FE6_0185_26F5_63DF, 0x3C84_6CA5_E0E4_32D0,
        0x3FE7_674A_F6F7_B524, 0x3C7E_9D3F_94AC_84A8, 0x3FE5_D2E2_55F1_F17A, 0x3C80_3141_04C8_892B,
        0x3FE7_92C1_D004_1D52, 0xBC8A_BF05_EEB3_54EB, 0x3FE5_A3E8_3982_4077, 0x3C84_28AA_2759_BE62,
        0x3FE7_BDDA_5E28_B3C2, 0x3C4A_D119_7CCD_0393, 0x3FE5_7497_8D8E_83F2, 0x3C8F_4714_AF28_2D23,
        0x3FE7_E893_F503_7959, 0x3C80_EEFB_AA65_0C4C, 0x3FE5_44F1_0F59_2CA5, 0xBC8E_7AE8_E6C7_A62F,
        0x3FE8_12ED_E9AE_4BA4, 0xBC87_830A_DF40_2DDA, 0x3FE5_14F5_7D7B_F3DA, 0x3C74_7A10_8073_C259
    ]
}
