/// An error the command line reports as it is (exit status 1, no usage text).
public struct CLIError: Error, CustomStringConvertible {
    /// The value as it is written on the command line or in a message.
    public var description: String

    public init(_ description: String) { self.description = description }
}
