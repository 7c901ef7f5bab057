//go:build !linux && !darwin

package fingerprint

import (
	"errors"
	"io/fs"
)

func devOf(path string) (uint32, uint32, error) {
	return 0, 0, &fs.PathError{Op: "stat", Path: path, Err: errors.ErrUnsupported}
}

func statfsID(path string) (string, string, error) {
	return "", "", &fs.PathError{Op: "statfs", Path: path, Err: errors.ErrUnsupported}
}
