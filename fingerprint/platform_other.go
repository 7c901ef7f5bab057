//go:build !linux && !darwin && !windows

package fingerprint

func platformTasks(o *options) []task { return genericTasks(o) }
