import Testing
import ZImageCLI
import ZImageTestSupport

@Suite struct TokenizeCommandTests {
    @Test func argumentsAreValidated() throws {
        #expect(try ZImageCommand.parseAsRoot(["tokenize", "--model", "m", "--template", "a fox"]) is TokenizeCommand)
        #expect(throws: (any Error).self) { try ZImageCommand.parseAsRoot(["tokenize", "--model", "m"]) }
        #expect(throws: (any Error).self) {
            try ZImageCommand.parseAsRoot(["tokenize", "--model", "m", "--file", "x.txt", "text"])
        }
    }

    @Test func runsOnTheTinyModel() throws {
        var command = try #require(try ZImageCommand.parseAsRoot(
            ["tokenize", "--model", Fixtures.path("tiny-zimage"), "--json", "--template", "a red fox"]) as? TokenizeCommand)
        try command.run()
        var empty = try #require(try ZImageCommand.parseAsRoot(
            ["tokenize", "--model", Fixtures.path("tiny-zimage"), ""]) as? TokenizeCommand)
        #expect(throws: CLIError.self) { try empty.run() }
        _ = (command, empty)
    }
}
