import Foundation
import Testing
import ZImagePipeline
@testable import ZImageServer

/// The web UI and the OpenAPI document are found beside the executable (here the test bundle,
/// whose build folder holds `zimage_ZImageServer.resources`), and a missing bundle is nil, not the
/// crash `Bundle.module`'s accessor gave a copied `zimage serve` on the GPU machine.
@Suite struct InstalledResourcesTests {
    @Test func serverResourcesAreFoundBesideTheExecutable() throws {
        let folder = try #require(ServerResources.publicDirectory)
        #expect(FileManager.default.fileExists(atPath: folder + "/index.html"))
        let document = try #require(ServerResources.openAPI)
        #expect((try JSONSerialization.jsonObject(with: document) as? [String: Any])?["openapi"] != nil)
    }

    @Test func aMissingBundleIsNil() {
        #expect(InstalledResources.path(target: "NoSuchTarget", resource: "public") == nil)
        #expect(InstalledResources.path(target: "ZImageServer", resource: "no-such-file") == nil)
    }
}
