import Foundation
import ZImageModels

/// A LoRA a generation asks for: by name (a file of the LoRA folder) or path, and a strength.
public struct LoRAReference: Sendable, Codable, Equatable {
    /// A name from the LoRA folder (`detail_slider`) or a path to a `.safetensors` file.
    public var name: String
    /// Multiplies the update (A1111's `<lora:name:0.8>`; 1 when not given).
    public var strength: Float

    public init(name: String, strength: Float = 1) {
        (self.name, self.strength) = (name, strength)
    }

    /// `FILE[:STRENGTH]` as `--lora` takes it: the text after the last colon is the strength when
    /// it is a number (so `C:\x.safetensors` and `a:b.safetensors` keep their colons).
    public init(argument: String) {
        if let colon = argument.lastIndex(of: ":"), colon != argument.startIndex,
           let strength = Float(argument[argument.index(after: colon)...]) {
            self.init(name: String(argument[..<colon]), strength: strength)
        } else {
            self.init(name: argument)
        }
    }
}

/// The LoRA folder (`<data directory>/loras`, as A1111's `models/Lora`): every `.safetensors`
/// below it, named by its file name without the extension.
public struct LoRALibrary: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// One LoRA file of the folder.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var path: String
        public var byteCount: Int
    }

    /// Every LoRA below the folder (subfolders included), sorted by name; empty when it is absent.
    public func entries() -> [Entry] {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.fileSizeKey],
                                                          options: [.skipsHiddenFiles]) else { return [] }
        var found: [Entry] = []
        for case let url as URL in walker where url.pathExtension == "safetensors" {
            let size = (try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
            found.append(Entry(name: LoRAFile.displayName(url.path), path: url.path, byteCount: size))
        }
        return found.sorted { $0.name == $1.name ? $0.path < $1.path : $0.name < $1.name }
    }

    /// The file a reference means: an existing file path as given, else the folder's LoRA of that
    /// name. `nil` when neither exists.
    public func path(for name: String, allowPaths: Bool) -> String? {
        if allowPaths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory), !isDirectory.boolValue {
                return name
            }
        }
        return entries().first { $0.name == name }?.path
    }
}
