import ArgumentParser
import Foundation
import ZImageHub
import ZImagePipeline
import ZImageTensor
import ZImageWeights

/// `zimage inspect PATH`: tensors of a `.safetensors` file, a shard index or a model directory.
public struct InspectCommand: ParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a .safetensors or .gguf file or a diffusers model directory.",
        discussion: "A corrupt file is reported with what is wrong and a non-zero exit status."
    )

    @Argument(help: "A .safetensors or .gguf file, a *.safetensors.index.json, a model directory with model_index.json, or ORG/NAME in the Hugging Face cache.")
    var path: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: .long, help: "List every tensor of a model directory (files always list theirs).")
    var tensors = false

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Runs the command.
    public func run() throws {
        let report = try Self.report(path: path, listTensors: tensors)
        print(json ? report.json() : report.text())
    }

    /// Builds the report without printing (tests call this).
    public static func report(path given: String, listTensors: Bool = true) throws -> InspectReport {
        let path = try ModelLocator.resolve(given)   // ORG/NAME in the Hugging Face cache, else the path itself
        // The type is checked before anything opens the path: opening a FIFO would wait forever.
        switch FileKind(path) {
        case .missing: throw CLIError("\(path): no such file or directory")
        case .regular, .directory: break
        case let kind: throw CLIError("\(path) \(kind.phrase)")
        }
        if FileKind(path) == .directory {
            try ModelFolderCheck.check(path)
            let model = try ModelDirectory(path: path)
            var components: [InspectReport.Component] = []
            for component in model.components {
                var entry = InspectReport.Component(name: component.name, className: component.className)
                if component.weightsPath != nil {
                    let weights = try model.weights(of: component.name)
                    entry.files = weights.shards.map { ($0.path as NSString).lastPathComponent }
                    entry.tensors = InspectReport.tensors(of: weights)
                    entry.layout = SplitFiles.layoutDescription(of: weights)
                }
                components.append(entry)
            }
            return InspectReport(path: path, pipeline: model.pipelineClass, components: components,
                                 listTensors: listTensors)
        }
        let weights = try WeightSet(path: path)
        var entry = InspectReport.Component(name: (path as NSString).lastPathComponent, className: nil)
        entry.files = weights.shards.map { ($0.path as NSString).lastPathComponent }
        entry.tensors = InspectReport.tensors(of: weights)
        entry.layout = SplitFiles.layoutDescription(of: weights)
        return InspectReport(path: path, pipeline: nil, components: [entry], listTensors: true)
    }
}

/// What `inspect` found: per component, its tensors and totals.
public struct InspectReport {
    public struct TensorRow: Equatable {
        public var name: String
        public var dtype: DType
        public var shape: Shape
        public var bytes: Int
        /// The stored form when it is not plain `dtype` (`Q8_0`, `F8_E4M3×scale`).
        public var storage: String? = nil
    }

    public struct Component {
        public var name: String
        public var className: String?
        public var files: [String] = []
        public var tensors: [TensorRow] = []
        /// The layout detected from the keys and what loading does with it (nil: not a Z-Image part).
        public var layout: String?
        public var totalBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }
        public var parameterCount: Int { tensors.reduce(0) { $0 + $1.shape.count } }
        /// Bytes per stored type, e.g. `["BF16": 123]` (`Q8_0` for GGML blocks; fp8 by its dtype).
        public var bytesByDType: [String: Int] {
            tensors.reduce(into: [:]) { totals, row in
                let name = row.storage.map { String($0.prefix { $0 != "×" }) } ?? row.dtype.safetensorsName
                totals[name, default: 0] += row.bytes
            }
        }
    }

    public var path: String
    public var pipeline: String?
    public var components: [Component]
    public var listTensors: Bool

    static func tensors(of weights: WeightSet) -> [TensorRow] {
        weights.keys.compactMap { key in
            weights.entries[key].map {
                TensorRow(name: key, dtype: $0.dtype, shape: $0.shape, bytes: $0.byteCount,
                          storage: $0.encoding == .plain ? nil : $0.storageName)
            }
        }
    }

    /// A plain-text table.
    public func text() -> String {
        var lines: [String] = []
        if let pipeline { lines.append("\(path): \(pipeline)") }
        for component in components {
            let kind = component.className.map { " (\($0))" } ?? ""
            if component.files.isEmpty {
                lines.append("\(component.name)\(kind): no weights")
                continue
            }
            let dtypes = component.bytesByDType.sorted { $0.key < $1.key }
                .map { "\($0.key) \(ByteCount.format($0.value))" }.joined(separator: ", ")
            lines.append("\(component.name)\(kind): \(component.tensors.count) tensors, "
                + "\(component.parameterCount) parameters, \(ByteCount.format(component.totalBytes)) [\(dtypes)]"
                + " in \(component.files.count) file(s)")
            if let layout = component.layout { lines.append("  layout: \(layout)") }
            if listTensors {
                let width = component.tensors.map(\.name.count).max() ?? 0
                for row in component.tensors {
                    let name = row.name.padding(toLength: width, withPad: " ", startingAt: 0)
                    let stored = row.storage ?? row.dtype.safetensorsName
                    lines.append("  \(name)  \(stored.padding(toLength: max(7, stored.count), withPad: " ", startingAt: 0)) \(row.shape)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// JSON: `{"path", "pipeline", "components": [{"name", "class", "files", "total_bytes",
    /// "parameters", "bytes_by_dtype", "tensors": [{"name", "dtype", "shape", "bytes"}]}]}`.
    public func json() -> String {
        let object: [String: Any] = [
            "path": path,
            "pipeline": pipeline ?? NSNull(),
            "components": components.map { component -> [String: Any] in
                [
                    "name": component.name,
                    "class": component.className ?? NSNull(),
                    "layout": component.layout ?? NSNull(),
                    "files": component.files,
                    "total_bytes": component.totalBytes,
                    "parameters": component.parameterCount,
                    "bytes_by_dtype": component.bytesByDType,
                    "tensors": component.tensors.map {
                        ["name": $0.name, "dtype": $0.dtype.safetensorsName, "shape": $0.shape.dims, "bytes": $0.bytes,
                         "storage": $0.storage ?? $0.dtype.safetensorsName] as [String: Any]
                    },
                ]
            },
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
