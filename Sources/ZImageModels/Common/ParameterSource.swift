import ZImageTensor
import ZImageWeights

/// Where a layer gets its parameters while it is built. Each layer names each of its checkpoint
/// keys once, in its `init`, by asking its source for (key, shape, format); the same `init` runs
/// against two sources:
///
/// - `ParameterDeclarations` records what is asked and hands back nothing (`Void`): the
///   model's `ParameterSpec`, made without a file (for verification, the demo model and tests);
/// - `LoadedParameters` hands back the verified tensors of a `ParameterStore`, each linear weight
///   brought into its declared format on the way (the load-time transform: FP8 quantisation).
///
/// Layer types are generic over their source; their forward passes exist only for
/// `LoadedParameters`.
protocol ParameterSource {
    /// What a tensor parameter is in the built layer: a `Tensor`, or `Void` when declaring.
    associatedtype Value
    /// What a linear layer's weight is in the built layer: a `LinearWeight`, or `Void`.
    associatedtype LinearValue
    /// The error a request can end in (`Never` when declaring).
    associatedtype Failure: Error

    /// The parameter `key`, of `shape`.
    func tensor(_ key: String, shape: Shape) throws(Failure) -> Value

    /// The weight `key` of a linear layer, of `shape` `[out, in]`, held as `format`.
    func linearWeight(_ key: String, shape: Shape, format: LinearWeightFormat) throws(Failure) -> LinearValue
}

/// Records the parameters layers declare while they are built: the registry a `ParameterSpec`
/// is made from.
final class ParameterDeclarations: ParameterSource {
    typealias Value = Void
    typealias LinearValue = Void
    typealias Failure = Never

    private(set) var shapes: [String: Shape] = [:]
    private(set) var formats: [String: LinearWeightFormat] = [:]

    func tensor(_ key: String, shape: Shape) {
        shapes[key] = shape
    }

    func linearWeight(_ key: String, shape: Shape, format: LinearWeightFormat) {
        shapes[key] = shape
        if format != .dense { formats[key] = format }
    }

    /// What was declared, with the prefixes of the checkpoint's keys the model leaves unused.
    func spec(ignoring ignoredPrefixes: [String] = []) -> ParameterSpec {
        ParameterSpec(shapes: shapes, ignoredPrefixes: ignoredPrefixes, formats: formats)
    }
}

/// The tensors of a loaded (and verified) `ParameterStore`, as the layers that declared them ask
/// for them: a shape that is not the declared one is an error naming the key.
struct LoadedParameters: ParameterSource {
    typealias Value = Tensor
    typealias LinearValue = LinearWeight
    typealias Failure = any Error

    let component: String
    private let fetch: (String) throws -> Tensor
    /// Collects every tensor the built layers hold, in the order they ask for them (a streamed
    /// layer's slot is filled in that order).
    let recorder: TensorRecorder?

    init(_ store: ParameterStore) {
        component = store.component
        fetch = { try store[$0] }
        recorder = nil
    }

    /// Tensors read as the layers ask for them (`fetch`, e.g. from a verified `WeightSet`), so a
    /// load-time transform can let each dense tensor go once its layer holds its own form.
    init(component: String, recorder: TensorRecorder? = nil, fetch: @escaping (String) throws -> Tensor) {
        self.component = component
        self.fetch = fetch
        self.recorder = recorder
    }

    func tensor(_ key: String, shape: Shape) throws -> Tensor {
        let tensor = try fetch(key)
        guard tensor.shape == shape else {
            throw WeightLoadingError.shapeMismatch(component: component, key: key, expected: shape,
                                                   found: tensor.shape)
        }
        recorder?.tensors.append(tensor)
        return tensor
    }

    /// The dense weight brought into `format` (quantised on its backend for FP8); a store keeps
    /// the dense tensor, which is what a LoRA merge starts from.
    func linearWeight(_ key: String, shape: Shape, format: LinearWeightFormat) throws -> LinearWeight {
        let dense = try fetch(key)
        guard dense.shape == shape else {
            throw WeightLoadingError.shapeMismatch(component: component, key: key, expected: shape, found: dense.shape)
        }
        let weight = try LinearWeight(dense, format: format)
        recorder?.tensors += weight.storageTensors
        return weight
    }
}

/// The tensors a layer holds, in the order it asked for them (see `LoadedParameters.recorder`).
final class TensorRecorder {
    var tensors: [Tensor] = []
}
