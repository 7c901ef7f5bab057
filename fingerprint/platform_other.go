//go:build !linux && !darwin && !windows

package fingerprint

// platformTasks returns the sources of the running system: only the portable ones, so every other
// component is reported Unsupported.
func platformTasks(o *options) []task { return genericTasks(o) }
