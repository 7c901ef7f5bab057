package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportedConstantsShowTheirValue checks that no exported constant of
// the library is declared as a bare unexported name, such as
// "const RollbackSlack = rollbackSlack": go doc prints the declaration as
// written, so the reader would see a name they cannot look up instead of
// the value.
func TestExportedConstantsShowTheirValue(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(moduleRoot, path)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if rel == "examples" || rel == "internal" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					checked++
					if id, ok := vs.Values[i].(*ast.Ident); ok && !id.IsExported() && id.Name != "iota" {
						t.Errorf("%s: const %s = %s: go doc shows the unexported name, not the value", rel, name.Name, id.Name)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no exported constant found: the walk is broken")
	}
}
