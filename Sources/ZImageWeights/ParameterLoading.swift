import ZImageTensor

/// The parameters a model expects: key → shape, plus key prefixes it deliberately leaves unused
/// (for example the VAE encoder, or the text encoder's last layer, which Z-Image never runs).
/// The models make theirs from what their layers declare as they are built
/// (`ZImageModels/Common/ParameterSource.swift`), so each key is written once, beside its layer.
public struct ParameterSpec: Sendable {
    /// Every expected key and its shape.
    public var shapes: [String: Shape]
    /// Prefixes of keys the checkpoint may hold that the model leaves unused.
    public var ignoredPrefixes: [String]
    /// The linear weights the layers hold in another format than the loaded dense tensor (FP8),
    /// converted when the layers are built; absent keys are dense.
    public var formats: [String: LinearWeightFormat]

    public init(shapes: [String: Shape], ignoredPrefixes: [String] = [], formats: [String: LinearWeightFormat] = [:]) {
        self.shapes = shapes
        self.ignoredPrefixes = ignoredPrefixes
        self.formats = formats
    }

    /// Checks `weights` against this spec: no missing key, no unknown key outside the ignored
    /// prefixes, every shape equal. Errors list every offending key (sorted).
    public func verify(_ weights: WeightSet, component: String) throws {
        let missing = shapes.keys.filter { weights.entries[$0] == nil }.sorted()
        guard missing.isEmpty else { throw WeightLoadingError.missingKeys(component: component, keys: missing) }
        let unexpected = weights.entries.keys.filter { key in
            shapes[key] == nil && !ignoredPrefixes.contains(where: { key.hasPrefix($0) })
        }.sorted()
        guard unexpected.isEmpty else {
            throw WeightLoadingError.unexpectedKeys(component: component, keys: unexpected)
        }
        for key in shapes.keys.sorted() {
            guard let expected = shapes[key], let info = weights.entries[key] else { continue }
            guard info.shape == expected else {
                throw WeightLoadingError.shapeMismatch(component: component, key: key, expected: expected,
                                                       found: info.shape)
            }
            guard info.isLoadable else {
                throw WeightLoadingError.dtypeNotLoadable(component: component, key: key, dtype: info.dtype)
            }
        }
    }

    /// Verifies, then loads every expected parameter onto `backend`, converted to `dtype` when given
    /// (the reference rounds the fp32 DiT checkpoint to bf16 this way).
    public func load(from weights: WeightSet, component: String, on backend: any Backend,
                     dtype: DType? = nil) throws -> ParameterStore {
        try verify(weights, component: component)
        var tensors: [String: Tensor] = [:]
        for key in shapes.keys {
            tensors[key] = try weights.tensor(key, on: backend, as: dtype)
        }
        return ParameterStore(component: component, tensors: tensors)
    }
}

/// Loaded parameters of one component, by checkpoint key.
public struct ParameterStore {
    public let component: String
    public let tensors: [String: Tensor]

    public init(component: String, tensors: [String: Tensor]) {
        self.component = component
        self.tensors = tensors
    }

    /// The parameter `key`; a typed error (naming the key) when absent.
    public subscript(key: String) -> Tensor {
        get throws {
            guard let tensor = tensors[key] else {
                throw WeightLoadingError.missingKeys(component: component, keys: [key])
            }
            return tensor
        }
    }
}
