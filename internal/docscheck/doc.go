// Package docscheck holds tests that keep the documentation in docs/ in step
// with the code. It has no API.
package docscheck
