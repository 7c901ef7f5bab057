// Package testhome points a test binary's per-user directories at a scratch
// directory, so that tests never read or write the real user's
// configuration (the anti-rollback records live under os.UserConfigDir).
//
// Use it in TestMain around m:
//
//	goleak.VerifyTestMain(testhome.M(m))
package testhome

import "os"

// vars are the environment variables os.UserConfigDir, os.UserCacheDir and
// os.UserHomeDir read on linux, darwin and windows.
var vars = [...]string{"XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HOME", "AppData", "LocalAppData", "USERPROFILE"}

// TestingM is what TestMain's m offers (and goleak.VerifyTestMain takes).
type TestingM interface{ Run() int }

// M wraps m: its Run sets every per-user directory variable to one new
// scratch directory, runs the tests, and removes the directory. Child
// processes a test starts inherit the scratch directory.
func M(m TestingM) TestingM { return runner{m} }

type runner struct{ m TestingM }

func (r runner) Run() int {
	dir, err := os.MkdirTemp("", "licensekit-home-")
	if err != nil {
		panic("testhome: " + err.Error())
	}
	defer os.RemoveAll(dir)
	for _, k := range vars {
		_ = os.Setenv(k, dir)
	}
	return r.m.Run()
}
