// Package vendorfiles names where the vendor-side examples (keygen,
// vendorserver) keep their files by default: a directory in the user's
// configuration directory, outside any source tree, so that a private key or
// a licence database never lands in a repository.
package vendorfiles

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir is the directory's name inside os.UserConfigDir.
const Dir = "licensekit-vendor"

// Path returns the default path of the file name: on Linux
// $XDG_CONFIG_HOME/licensekit-vendor/name (~/.config/licensekit-vendor/name),
// on macOS ~/Library/Application Support/licensekit-vendor/name, on Windows
// %AppData%\licensekit-vendor\name.
func Path(name string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default location for %s (%w): give a path", name, err)
	}
	return filepath.Join(dir, Dir, name), nil
}
