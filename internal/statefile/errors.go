package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Sentinel errors (see the package documentation, "Errors").
var (
	// ErrNotExist means no state has been saved in the slot yet.
	ErrNotExist = errors.New("statefile: no state")
	// ErrCorrupt means the state cannot be used: truncated, altered, sealed
	// under another key or aad, of an unknown version, or too large.
	ErrCorrupt = errors.New("statefile: state corrupt")
	// ErrLocked means every slot [Acquire] may use is held by another File,
	// in this process or another.
	ErrLocked = errors.New("statefile: all state slots are in use")
)

// Error describes a failed operation. It never contains a directory path,
// key or state contents.
type Error struct {
	// Op is the operation, such as "acquire", "read", "write" or "join".
	Op string
	// Path is the file name of the slot or lock file involved, without its
	// directory; empty for Seal and Open.
	Path string
	// Err is the cause: a sentinel of this package, an operating-system
	// error, or a detail wrapping either.
	Err error
}

// Error returns "statefile: <op> [<file>]: <cause>".
func (e *Error) Error() string {
	s := "statefile: " + e.Op
	if e.Path != "" {
		s += " " + e.Path
	}
	if e.Err != nil {
		s += ": " + strings.TrimPrefix(e.Err.Error(), "statefile: ")
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// wrap builds an *Error whose cause names no directory (see unwrapPath).
func wrap(op, name string, err error) error {
	return &Error{Op: op, Path: name, Err: unwrapPath(err)}
}

// unwrapPath replaces an *fs.PathError or *os.LinkError by its operation and
// cause, so that the message names no directory while errors.Is still sees
// the operating-system error.
func unwrapPath(err error) error {
	switch e := err.(type) {
	case *fs.PathError:
		return fmt.Errorf("%s: %w", e.Op, e.Err)
	case *os.LinkError:
		return fmt.Errorf("%s: %w", e.Op, e.Err)
	}
	return err
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
