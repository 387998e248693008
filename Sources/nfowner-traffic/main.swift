// The entry point stays a one-liner: each mode lives in its own file, the shared plumbing in Traffic.swift
// (options, result line) and System.swift (the only place that talks to Glibc sockets and clocks).
Traffic.main()
