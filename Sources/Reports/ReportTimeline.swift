import Accounting

/// The bytes of each report group in each time bucket: what the HTML report draws. One point
/// per (bucket, group, direction, mode) that had traffic; buckets without traffic have no point.
public struct ReportTimeline: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        /// Unix seconds: the start of the bucket.
        public var start: Int64
        /// The group's values, one per dimension of the report ("" = unknown).
        public var keys: [String]
        public var direction: TrafficDirection
        public var mode: AccountingMode
        public var bytes: UInt64

        public init(start: Int64, keys: [String], direction: TrafficDirection, mode: AccountingMode, bytes: UInt64) {
            self.start = start
            self.keys = keys
            self.direction = direction
            self.mode = mode
            self.bytes = bytes
        }
    }

    /// The shortest bucket length in the range (seconds); 60 when the range holds no bucket.
    public var bucketSeconds: Int64
    public var points: [Point]

    public init(bucketSeconds: Int64, points: [Point]) {
        self.bucketSeconds = max(1, bucketSeconds)
        self.points = points
    }
}
