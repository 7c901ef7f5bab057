package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// compiledRE finds a marker and the Go block after it:
//
//	<!-- compiled: PATH [FuncName] -->
//	```go
//	...
//	```
var compiledRE = regexp.MustCompile("(?s)<!-- compiled: (\\S+)(?: (\\S+))? -->\\s*```go\\n(.*?)```")

// source returns the text the marker names: a whole file without its
// leading comment (the file's own introduction), or one function.
func source(t *testing.T, path, fn string) string {
	t.Helper()
	full := filepath.Join(moduleRoot, filepath.FromSlash(path))
	src, err := os.ReadFile(full)
	if err != nil {
		t.Fatalf("marker names %s: %v", path, err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, full, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	if fn == "" {
		return string(src[fset.Position(f.Package).Offset:])
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == fn {
			return string(src[fset.Position(fd.Pos()).Offset:fset.Position(fd.End()).Offset]) + "\n"
		}
	}
	t.Fatalf("%s has no func %s", path, fn)
	return ""
}

// TestCompiledSnippets checks that every Go block the docs mark as compiled
// is the exact text of that file or function, so the code a reader copies
// is the code CI builds and runs.
func TestCompiledSnippets(t *testing.T) {
	docs, _ := filepath.Glob(filepath.Join(moduleRoot, "docs", "*.md"))
	docs = append(docs, filepath.Join(moduleRoot, "README.md"))
	total := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range compiledRE.FindAllStringSubmatch(string(text), -1) {
			total++
			want := source(t, m[1], m[2])
			if got := m[3]; got != want {
				t.Errorf("%s: the block marked compiled from %s %s differs from the source.\n--- doc:\n%s\n--- source:\n%s",
					filepath.Base(doc), m[1], m[2], got, want)
			}
		}
	}
	if total < 2 {
		t.Errorf("found %d compiled blocks; want at least the README's snippet and test example", total)
	}
}
