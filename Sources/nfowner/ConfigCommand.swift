import ArgumentParser
import Configuration

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the effective configuration or check a configuration file.",
        discussion: """
            nfowner reads \(ConfigLoader.defaultPath) when it exists (or the file given with \
            --config); every key is optional and falls back to the built-in default. See \
            docs/configuration.md for every key, its unit and range.
            """,
        subcommands: [Show.self, Check.self, Default.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration (the file merged over the defaults) as TOML.")
        @Option(name: .customLong("config"), help: ArgumentHelp("Configuration file.", valueName: "file"))
        var configPath: String?

        func run() throws {
            do {
                print(try ConfigLoader.load(path: configPath).renderTOML(), terminator: "")
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file: exit 0 and say so, or name the file, line and problem.")
        @Argument(help: ArgumentHelp("The file to check.", valueName: "file"))
        var path: String

        func run() throws {
            do {
                _ = try ConfigLoader.load(path: path)
                print("\(path): ok")
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "default",
            abstract: "Print the commented default configuration file (a starting point for \(ConfigLoader.defaultPath)).")

        func run() {
            print(NfownerConfig.embeddedDefaultTOML, terminator: "")
        }
    }
}
