import Foundation
import ZImageTensor
import ZImageWeights

/// A PyTorch `Linear`: `x · weightᵀ + bias`, weight `[out, in]`, held as `format` asks
/// (dense, or FP8 rows quantised at load).
struct Linear<Source: ParameterSource> {
    let weight: Source.LinearValue
    let bias: Source.Value?

    /// The layer at `prefix`: `prefix.weight` `[output, input]`, and `prefix.bias` `[output]` when
    /// `bias`.
    init(_ source: Source, _ prefix: String, input: Int, output: Int, bias hasBias: Bool = false,
         format: LinearWeightFormat = .dense) throws(Source.Failure) {
        weight = try source.linearWeight(prefix + ".weight", shape: [output, input], format: format)
        if hasBias {
            bias = try source.tensor(prefix + ".bias", shape: [output])
        } else {
            bias = nil
        }
    }
}

extension Linear where Source == LoadedParameters {
    /// `x` in the form this layer's GEMM reads (quantised for FP8), to share between layers that
    /// read the same input.
    func prepare(_ x: Tensor) throws -> LinearActivation { try weight.prepare(x) }

    /// `norm(x) · scale` (RMSNorm) as this layer's input, quantised by the norm itself for FP8.
    func prepare(rmsNormOf x: Tensor, _ norm: RMSNorm<Source>, scale: Tensor?) throws -> LinearActivation {
        try weight.prepareRMSNormalized(x, weight: norm.weight, scale: scale, eps: norm.eps)
    }

    func callAsFunction(_ x: LinearActivation) throws -> Tensor { try weight.apply(x, bias: bias) }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try weight.apply(prepare(x), bias: bias) }
}

/// RMSNorm over the last axis with a learned weight `prefix.weight` `[dimension]`.
struct RMSNorm<Source: ParameterSource> {
    let weight: Source.Value
    let eps: Float

    init(_ source: Source, _ prefix: String, dimension: Int, eps: Float) throws(Source.Failure) {
        weight = try source.tensor(prefix + ".weight", shape: [dimension])
        self.eps = eps
    }
}

extension RMSNorm where Source == LoadedParameters {
    func callAsFunction(_ x: Tensor) throws -> Tensor { try x.rmsNorm(weight: weight, eps: eps) }
}

/// Decoding of a component's `config.json` into a `Codable` configuration.
public enum ComponentConfiguration {
    /// Decodes `T` from the component's config file, with errors naming the file.
    public static func decode<T: Decodable>(_ type: T.Type, from component: ModelDirectory.Component) throws -> T {
        guard let path = component.configPath else {
            throw WeightLoadingError.fileNotFound(path: component.directory + "/config.json")
        }
        return try decode(type, path: path)
    }

    public static func decode<T: Decodable>(_ type: T.Type, path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw WeightLoadingError.fileNotFound(path: path) }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw WeightLoadingError.malformedJSON(path: path, detail: describe(error))
        } catch {
            throw WeightLoadingError.malformedJSON(path: path, detail: "\(error)")
        }
    }

    /// "field 'hidden_size': expected Int" rather than the decoder's debug dump.
    public static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "the top level" : "field '" + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "'"
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(field(context.codingPath)): expected \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(field(context.codingPath)): expected \(Self.name(of: type)), found null"
        case .keyNotFound(let key, let context):
            return "\(field(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(field(context.codingPath)) \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let text = String(describing: type)
            if text.hasPrefix("Array") { return "an array" }
            if text.hasPrefix("Dictionary") { return "an object" }
            return text
        }
    }
}
