import Foundation

/// What a path is, found with `stat` (which never blocks, unlike opening a FIFO).
enum FileKind: Equatable {
    case missing, regular(size: Int), directory, fifo, device, socket, linkLoop, other(String)

    init(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            self = errno == ELOOP ? .linkLoop : errno == ENOENT || errno == ENOTDIR ? .missing : .other(String(cString: strerror(errno)))
            return
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: self = .regular(size: Int(info.st_size))
        case S_IFDIR: self = .directory
        case S_IFIFO: self = .fifo
        case S_IFCHR, S_IFBLK: self = .device
        case S_IFSOCK: self = .socket
        default: self = .other("not a regular file")
        }
    }

    /// "is a FIFO (named pipe)", "is a directory", …, for error messages.
    var phrase: String {
        switch self {
        case .missing: "does not exist"
        case .regular: "is a file"
        case .directory: "is a directory"
        case .fifo: "is a FIFO (named pipe), not a file"
        case .device: "is a device, not a file"
        case .socket: "is a socket, not a file"
        case .linkLoop: "is a loop of symbolic links"
        case .other(let reason): "cannot be used: \(reason)"
        }
    }
}

/// Checks a model folder before anything opens its files: `model_index.json` must be a regular
/// file of reasonable size, its component names plain folder names (no `/`, `..` or absolute
/// paths), and every file in a component folder a regular file (a FIFO among them would hang the
/// loader). Errors are `CLIError`s that say which path is wrong and how.
enum ModelFolderCheck {
    static let maxIndexBytes = 1 << 20

    static func check(_ folder: String) throws {
        switch FileKind(folder) {
        case .directory: break
        case .missing: throw CLIError("\(folder): no such directory")
        case let kind: throw CLIError("\(folder) \(kind.phrase); give a model directory with model_index.json")
        }
        let index = (folder as NSString).appendingPathComponent("model_index.json")
        switch FileKind(index) {
        case .regular(let size) where size <= maxIndexBytes: break
        case .regular(let size): throw CLIError("\(index) is \(size) bytes; a model_index.json is a few hundred")
        case .missing: throw CLIError("\(folder) has no model_index.json (is it a diffusers model directory?)")
        case let kind: throw CLIError("\(index) \(kind.phrase)")
        }
        guard let data = FileManager.default.contents(atPath: index),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CLIError("\(index) is not a JSON object")
        }
        for (name, value) in object.sorted(by: { $0.key < $1.key }) where !name.hasPrefix("_") && value is [Any] {
            guard isPlainName(name) else {
                throw CLIError("\(index) names a component \"\(name)\"; component names must be plain folder names")
            }
            let component = (folder as NSString).appendingPathComponent(name)
            guard FileKind(component) == .directory else { continue }
            for file in (try? FileManager.default.contentsOfDirectory(atPath: component)) ?? [] {
                let path = (component as NSString).appendingPathComponent(file)
                switch FileKind(path) {
                case .regular, .directory: continue
                case let kind: throw CLIError("\(path) \(kind.phrase)")
                }
            }
        }
    }

    /// A name that stays inside the folder: letters, digits, `_`, `-`, `.`, not `.` or `..`.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 255
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }
    }
}

/// Makes sure a folder exists and can be written, before any work starts, with a plain sentence
/// when not ("--output /x: cannot create /x: Permission denied").
enum WritableFolder {
    static func ensure(_ path: String, flag: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("\(flag) \(path) is not a folder") }
        } else {
            var built = path.hasPrefix("/") ? "" : "."
            for component in path.split(separator: "/") {
                built += "/" + component
                if mkdir(built, 0o755) != 0 && errno != EEXIST {
                    throw CLIError("\(flag) \(path): cannot create \(built): \(String(cString: strerror(errno)))")
                }
            }
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw CLIError("\(flag) \(path) cannot be written: \(String(cString: strerror(errno)))")
        }
    }
}
