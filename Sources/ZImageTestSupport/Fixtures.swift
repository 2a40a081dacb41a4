import Foundation

/// The committed test fixtures (`Tests/Fixtures`), found from this source file's place in the
/// repository, so every test target and the bench name them the same way.
public enum Fixtures {
    /// `Tests/Fixtures` of this checkout.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures").path

    /// A path below `Tests/Fixtures`.
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The tiny random-weight Z-Image made by tools/fixtures/make_fixtures.py.
    public static var tinyModel: String { path("tiny-zimage") }
}
