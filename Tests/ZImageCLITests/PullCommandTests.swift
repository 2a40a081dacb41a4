import Testing
import ZImageCLI

@Suite struct PullCommandTests {
    @Test func argumentsAreValidated() throws {
        #expect(try ZImageCommand.parseAsRoot(["pull"]) is PullCommand)
        #expect(try ZImageCommand.parseAsRoot(["pull", "Tongyi-MAI/Z-Image-Turbo", "--revision", "refs/pr/1",
                                              "--include", "tokenizer/*", "--jobs", "4"]) is PullCommand)
        for bad in [["pull", "a/b/c"], ["pull", "../x"], ["pull", "--jobs", "0"], ["pull", "--jobs", "65"]] {
            #expect(throws: (any Error).self, "\(bad)") { try ZImageCommand.parseAsRoot(bad) }
        }
        // The model flags take split files together, and generate still parses without a model.
        #expect(try ZImageCommand.parseAsRoot(["generate", "--prompt", "x", "--transformer", "t.safetensors",
                                              "--text-encoder", "q.safetensors", "--vae", "ae.safetensors"]) is GenerateCommand)
    }
}
