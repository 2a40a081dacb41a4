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
    /// Tensors handed out in order instead of reading `fetch` (a streamed layer's slot made again
    /// over fresh device memory: the layer asks for its parameters in the order it recorded them).
    private let replay: TensorReplay?

    init(_ store: ParameterStore) {
        component = store.component
        fetch = { try store[$0] }
        recorder = nil
        replay = nil
    }

    /// Tensors read as the layers ask for them (`fetch`, e.g. from a verified `WeightSet`), so a
    /// load-time transform can let each dense tensor go once its layer holds its own form.
    init(component: String, recorder: TensorRecorder? = nil, fetch: @escaping (String) throws -> Tensor) {
        self.component = component
        self.fetch = fetch
        self.recorder = recorder
        replay = nil
    }

    /// Hands out `tensors` in order, as the layer built over them asks (see `TensorRecorder`).
    init(component: String, replaying tensors: [Tensor]) {
        self.component = component
        fetch = { key in throw WeightLoadingError.fileNotFound(path: "\(component): \(key) (a replayed slot reads no file)") }
        recorder = nil
        replay = TensorReplay(tensors)
    }

    func tensor(_ key: String, shape: Shape) throws -> Tensor {
        let tensor = try replay?.next(1, key: key, component: component)[0] ?? fetch(key)
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
        if let replay {
            let weight = try LinearWeight(format: format, storageTensors: replay.next(LinearWeight.storageCount(format), key: key,
                                                                                      component: component))
            guard weight.storageTensors[0].shape == shape else {
                throw WeightLoadingError.shapeMismatch(component: component, key: key, expected: shape,
                                                       found: weight.storageTensors[0].shape)
            }
            return weight
        }
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

/// Tensors handed out in the order a layer recorded them (see `LoadedParameters.init(replaying:)`).
final class TensorReplay {
    private let tensors: [Tensor]
    private var position = 0

    init(_ tensors: [Tensor]) { self.tensors = tensors }

    /// The next `count` tensors, for parameter `key`; an error when the layer asks for more than were recorded.
    func next(_ count: Int, key: String, component: String) throws -> [Tensor] {
        guard position + count <= tensors.count else {
            throw WeightLoadingError.shapeMismatch(component: component, key: key, expected: [count], found: [0])
        }
        defer { position += count }
        return Array(tensors[position..<(position + count)])
    }
}
