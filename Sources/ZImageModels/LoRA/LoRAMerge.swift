import ZImageTensor
import ZImageWeights

/// Merges LoRAs into loaded weights: W' = W + Σ sᵢ·ΔWᵢ with ΔW = B·A (or w1 ⊗ w2 for LoKr), as
/// ComfyUI and A1111 merge at load and as diffusers' `fuse_lora` does.
///
/// A separate step on a `ParameterStore`, before layers are built, so it works on whatever
/// backend and dtype the weights were loaded with. The sum is formed in float32 on the weights'
/// backend and rounded once to the weight's dtype. The input store is never changed: the merged
/// store shares every untouched tensor with it, and going back to the base model (or to other
/// LoRAs) is building from the base store again, exactly, with no reload and no subtraction.
public enum LoRAMerge {
    /// The weights of `store` with `loras` merged in. A module the store lacks, or an update of
    /// another shape than its weight, is an error naming the file and the module.
    public static func apply(_ loras: [WeightedLoRA], to store: ParameterStore) throws -> ParameterStore {
        guard !loras.isEmpty else { return store }
        let updates = try Updates(loras, shapes: store.tensors.mapValues(\.shape))
        var tensors = store.tensors
        for key in updates.keys.sorted() {
            guard let weight = store.tensors[key] else { continue }
            tensors[key] = try updates.merged(key, weight)
        }
        return ParameterStore(component: store.component, tensors: tensors)
    }

    /// The updates of a list of LoRAs by weight key, checked against the model's shapes: a module
    /// the model lacks, or an update of another shape than its weight, is an error naming the file
    /// and the module. `merged` applies them to one weight as it is read (a streamed transformer
    /// merges block by block at load, never holding its dense weights at once).
    public struct Updates {
        private var updates: [String: [(factors: LoRAFactors, strength: Float)]] = [:]

        /// The updates of `loras` for a model whose weights have `shapes` (by key).
        public init(_ loras: [WeightedLoRA], shapes: [String: Shape]) throws {
            for weighted in loras {
                for module in weighted.lora.modules.keys.sorted() {
                    guard let factors = weighted.lora.modules[module] else { continue }
                    let key = module + ".weight"
                    guard let shape = shapes[key] else {
                        throw LoRAError.unknownModule(file: weighted.lora.name, key: key, module: module)
                    }
                    let expected = shape.dims
                    let found = LoRAMerge.shape(of: factors)
                    guard expected.count == 2, found == expected else {
                        throw LoRAError.shapeMismatch(file: weighted.lora.name, key: key, module: module,
                                                      expected: expected, found: found)
                    }
                    updates[key, default: []].append((factors, weighted.strength))
                }
            }
        }

        /// The keys some LoRA changes.
        public var keys: Dictionary<String, [(factors: LoRAFactors, strength: Float)]>.Keys { updates.keys }

        /// `weight` (parameter `key`) with its updates: the sum formed in float32 on the weight's
        /// backend and rounded once to its dtype; the weight itself when no LoRA touches it.
        public func merged(_ key: String, _ weight: Tensor) throws -> Tensor {
            guard let list = updates[key] else { return weight }
            let backend = weight.backend
            var sum = try weight.cast(to: .float32)
            for (factors, strength) in list where strength != 0 {
                sum = try sum + LoRAMerge.delta(factors, on: backend).affine(scale: strength)
            }
            return try sum.cast(to: weight.dtype)
        }
    }

    /// Bytes, as bf16, of the weights `loras` change (each weight once, however many LoRAs touch
    /// it): what a resident transformer's merged copies take (the VRAM planner's `loraBytes`).
    public static func changedBytes(_ loras: [WeightedLoRA]) -> Int {
        var shapes: [String: [Int]] = [:]
        for weighted in loras {
            for (module, factors) in weighted.lora.modules { shapes[module] = shape(of: factors) }
        }
        // Counts from a file: saturating, never trapping.
        let limit = Int.max / 4
        return shapes.values.reduce(0) { total, shape in
            var count = 2
            for extent in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: max(extent, 0))
                count = overflow ? limit : min(product, limit)
            }
            let (sum, overflow) = total.addingReportingOverflow(count)
            return overflow ? limit : min(sum, limit)
        }
    }

    /// The `[out, in]` shape an update has.
    static func shape(of factors: LoRAFactors) -> [Int] {
        switch factors {
        case .lowRank(let down, let up): [up.rows, down.columns]
        case .kronecker(let w1, let w2): [w1.rows * w2.rows, w1.columns * w2.columns]
        }
    }

    /// ΔW in float32 on `backend`: B·A as one matrix product there; w1 ⊗ w2 on the host (LoKr
    /// factors are small) and uploaded.
    static func delta(_ factors: LoRAFactors, on backend: any Backend) throws -> Tensor {
        switch factors {
        case .lowRank(let down, let up):
            let a = try backend.tensor(down.values, shape: [down.rows, down.columns])
            let b = try backend.tensor(up.values, shape: [up.rows, up.columns])
            return try b.matmul(a)
        case .kronecker(let w1, let w2):
            let product = w1.kronecker(w2)
            return try backend.tensor(product.values, shape: Shape(product.shape))
        }
    }
}
