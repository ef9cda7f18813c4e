// Package cvm implements watcher.Source on the official Tencent Cloud Go SDK:
// it lists a target's instances with DescribeInstancesStatus, page by page,
// under a shared rate limiter, and looks instances up by ID.
//
// Everything Tencent-specific stays here: the SDK client set-up (no region
// breaker, no SDK retries, timeouts, a response size cap), the classification
// of Tencent error codes, the retry policy and the validation of responses.
// The simulator in cvmsim speaks the same wire format for tests and demos.
package cvm
