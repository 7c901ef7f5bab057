// Package consoletest drives the mock server's console in a real headless
// Chromium. It lives in the examples module so that the library module does
// not require a browser driver; it has no code of its own, only a test.
package consoletest
