import ArgumentParser
import Policy

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check an enforce policy file.",
        discussion: """
            A policy file says which programs, units and users may send what (see `nfowner enforce \
            --help` and docs/enforce.md for the format).
            """,
        subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a policy file: print every error and warning as FILE:LINE: …, exit 1 on errors.",
            discussion: """
                Errors: TOML syntax, unknown keys (with the closest known key), values of the wrong \
                type, invalid CIDR blocks, port ranges whose start is past their end, unknown actions, \
                protocols and ICMP types. Warnings: rules that can never match because an earlier rule \
                matches everything they would (first match wins). With no errors, prints a one-line \
                summary of the policy and exits 0, warnings or not.
                """)
        @Argument(help: ArgumentHelp("The policy file to check.", valueName: "file"))
        var path: String

        func run() throws {
            let check = PolicyParser.load(path: path)
            for warning in check.warnings { print(warning) }
            guard let policy = check.policy, check.errors.isEmpty else {
                for error in check.errors { print(error) }
                throw ExitCode(1)
            }
            print("\(path): ok: \(policy.rules.count) rule(s), default \(policy.defaultAction.rawValue), "
                  + "mode \(policy.mode.rawValue), fail \(policy.fail.rawValue)"
                  + (check.warnings.isEmpty ? "" : ", \(check.warnings.count) warning(s)"))
        }
    }
}
