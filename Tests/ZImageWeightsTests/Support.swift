import Foundation
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// A fresh temporary folder, removed by the caller.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "zimage-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func writeJSON(_ object: Any, to path: String) throws {
    try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
}
