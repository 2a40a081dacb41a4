/// An error the command line reports as it is (exit status 1, no usage text).
public struct CLIError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
