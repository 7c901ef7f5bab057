//go:build windows

package statefile

// syncDir is a no-op: Windows cannot open a directory for a flush, and
// MoveFileEx (behind os.Rename) is as durable as it gets there.
func syncDir(string) error { return nil }
