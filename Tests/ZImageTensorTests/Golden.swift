import Foundation
import Testing
import ZImageCPU
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// Paths of the committed fixtures (written by tools/fixtures/*.py).
/// The op goldens of Tests/Fixtures/ops/ops.safetensors: tensors `<case>.<role>` and a JSON
/// parameter string per case in the metadata.
struct OpGoldens {
    let file: SafetensorsFile
    let backend: CPUBackend

    init(backend: CPUBackend = CPUBackend()) throws {
        file = try SafetensorsFile(path: Fixtures.path("ops/ops.safetensors"))
        self.backend = backend
    }

    func tensor(_ name: String) throws -> Tensor { try file.tensor(name, on: backend) }

    func parameters(_ name: String) throws -> [String: Any] {
        guard let text = file.metadata[name], let data = text.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object
    }

    var cases: [String] { file.metadata["cases"]?.split(separator: ",").map(String.init) ?? [] }
}



/// Largest distance in units of the last place between two bf16/f16 tensors' bit patterns.
func maximumULPDistance(_ a: Tensor, _ b: Tensor) throws -> Int {
    let x = try a.toBytes(), y = try b.toBytes()
    var worst = 0
    for i in stride(from: 0, to: min(x.count, y.count), by: 2) {
        let u = Int16(bitPattern: UInt16(x[i]) | UInt16(x[i + 1]) << 8)
        let v = Int16(bitPattern: UInt16(y[i]) | UInt16(y[i + 1]) << 8)
        // Map sign-magnitude to a monotonic integer line.
        func line(_ s: Int16) -> Int { s < 0 ? -Int(s & 0x7FFF) : Int(s) }
        worst = max(worst, abs(line(u) - line(v)))
    }
    return worst
}
