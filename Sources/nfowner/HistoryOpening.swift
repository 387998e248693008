import Configuration
import Daemon

/// The history writer for `[storage]`; nil when the path is "" (no history).
func openHistory(_ storage: NfownerConfig.Storage) throws -> (any BucketWriter)? {
    guard !storage.path.isEmpty else { return nil }
    return nil
}
