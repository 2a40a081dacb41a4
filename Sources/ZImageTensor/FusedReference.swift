/// The reference meaning of each fused Backend op, composed from the plain ops, with the same
/// rounding points as diffusers in low precision (each plain op rounds to the input dtype).
/// Backends without a fused kernel use these (the protocol defaults below); GPU kernels are
/// tested against them.
public enum FusedReference {
    public static func rmsNormScaled(_ backend: any Backend, _ x: Tensor, weight: Tensor?, scale: Tensor?,
                                     eps: Float) throws -> Tensor {
        let normed = try backend.rmsNorm(x, weight: weight, eps: eps)
        guard let scale else { return normed }
        return try backend.binary(.multiply, normed, scale)
    }

    public static func gatedRMSNormResidual(_ backend: any Backend, _ x: Tensor, _ y: Tensor, weight: Tensor?,
                                            gate: Tensor?, eps: Float) throws -> Tensor {
        var normed = try backend.rmsNorm(y, weight: weight, eps: eps)
        if let gate { normed = try backend.binary(.multiply, gate, normed) }
        return try backend.binary(.add, x, normed)
    }

    public static func rmsNormRope(_ backend: any Backend, _ x: Tensor, weight: Tensor?, eps: Float, cos: Tensor,
                                   sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try backend.rope(backend.rmsNorm(x, weight: weight, eps: eps), cos: cos, sin: sin, layout: layout)
    }

    public static func siluMultiply(_ backend: any Backend, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try backend.binary(.multiply, backend.unary(.silu, a), b)
    }

    public static func groupNormSiLU(_ backend: any Backend, _ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?,
                                     eps: Float) throws -> Tensor {
        try backend.unary(.silu, backend.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps))
    }
}

extension Backend {
    public func rmsNormScaled(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Tensor {
        try FusedReference.rmsNormScaled(self, x, weight: weight, scale: scale, eps: eps)
    }

    public func gatedRMSNormResidual(_ x: Tensor, _ y: Tensor, weight: Tensor?, gate: Tensor?,
                                     eps: Float) throws -> Tensor {
        try FusedReference.gatedRMSNormResidual(self, x, y, weight: weight, gate: gate, eps: eps)
    }

    public func rmsNormRope(_ x: Tensor, weight: Tensor?, eps: Float, cos: Tensor, sin: Tensor,
                            layout: RoPELayout) throws -> Tensor {
        try FusedReference.rmsNormRope(self, x, weight: weight, eps: eps, cos: cos, sin: sin, layout: layout)
    }

    public func siluMultiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try FusedReference.siluMultiply(self, a, b)
    }

    public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try FusedReference.groupNormSiLU(self, x, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    public func beginStage(_ name: String) {}

    public func profileReport() -> String? { nil }
}

extension Tensor {
    /// `rmsNorm(weight) · scale` (scale one row shared by every row; nil for none).
    public func rmsNorm(weight: Tensor?, eps: Float, scale: Tensor?) throws -> Tensor {
        try sameDevice("rmsNormScaled", weight, scale)
        return try backend.rmsNormScaled(self, weight: weight, scale: scale, eps: eps)
    }

    /// `self + gate · rmsNorm(y, weight)` (gate nil for 1).
    public func addingGatedRMSNorm(of y: Tensor, weight: Tensor?, gate: Tensor?, eps: Float) throws -> Tensor {
        try sameDevice("gatedRMSNormResidual", y, weight, gate)
        return try backend.gatedRMSNormResidual(self, y, weight: weight, gate: gate, eps: eps)
    }

    /// `rope(rmsNorm(weight))` over the head vectors of `[B, L, H, D]`.
    public func rmsNormRope(weight: Tensor?, eps: Float, cos: Tensor, sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try sameDevice("rmsNormRope", weight, cos, sin)
        return try backend.rmsNormRope(self, weight: weight, eps: eps, cos: cos, sin: sin, layout: layout)
    }

    /// `silu(groupNorm(self))`.
    public func groupNormSiLU(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try sameDevice("groupNormSiLU", weight, bias)
        return try backend.groupNormSiLU(self, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    /// `silu(self) · other`.
    public func siluMultiply(_ other: Tensor) throws -> Tensor {
        try sameDevice("siluMultiply", other)
        return try backend.siluMultiply(self, other)
    }
}
