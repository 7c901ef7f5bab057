package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const moduleRoot = "../.."

// exportedErrors returns, for every public package of the module (not
// internal/, examples/ or testdata/), its exported error variables (Err*)
// and its exported types with an Error method, as "pkg.Name" and
// "*pkg.Name" (pointer receivers).
func exportedErrors(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(moduleRoot, path)
		rel = filepath.ToSlash(rel)
		switch first, _, _ := strings.Cut(rel, "/"); first {
		case "internal", "examples", "testdata", "docs", "scripts":
			return filepath.SkipDir
		}
		if strings.HasPrefix(d.Name(), ".") && rel != "." {
			return filepath.SkipDir
		}
		out = append(out, packageErrors(t, path)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func packageErrors(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	pkg := ""
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name == "main" {
			return nil
		}
		pkg = f.Name.Name
		files = append(files, f)
	}
	var out []string
	types := map[string]bool{}     // exported type name -> declared here
	errType := map[string]string{} // type name -> "*" when Error has a pointer receiver
	for _, f := range files {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						if d.Tok != token.VAR {
							continue
						}
						for _, n := range s.Names {
							if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
								out = append(out, pkg+"."+n.Name)
							}
						}
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							types[s.Name.Name] = true
						}
						// An alias of another package's error type (type Error =
						// verdict.Error) is an error type of this package too; the
						// internal packages it points at use pointer receivers.
						if sel, ok := s.Type.(*ast.SelectorExpr); ok && s.Assign.IsValid() &&
							s.Name.IsExported() && strings.HasSuffix(sel.Sel.Name, "Error") {
							errType[s.Name.Name] = "*"
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || d.Name.Name != "Error" || len(d.Recv.List) != 1 {
					continue
				}
				recv := d.Recv.List[0].Type
				star := ""
				if se, ok := recv.(*ast.StarExpr); ok {
					recv, star = se.X, "*"
				}
				if id, ok := recv.(*ast.Ident); ok {
					errType[id.Name] = star
				}
			}
		}
	}
	for name, star := range errType {
		if types[name] {
			out = append(out, star+pkg+"."+name)
		}
	}
	return out
}

// TestErrorsIndexComplete fails when an exported error of a public package
// is missing from docs/errors-index.md.
func TestErrorsIndexComplete(t *testing.T) {
	index, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "errors-index.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := exportedErrors(t)
	if len(found) < 20 {
		t.Fatalf("found only %d exported errors (%v); the scan is broken", len(found), found)
	}
	for _, name := range found {
		if !strings.Contains(string(index), "`"+name+"`") {
			t.Errorf("docs/errors-index.md does not list `%s`", name)
		}
	}
	for _, known := range []string{"license.ErrNoState", "*license.Error", "*license.APIError", "*envelope.Error",
		"*transport.Error", "*fingerprint.MissingError", "licensetest.ErrUnknownLicense"} {
		if !slices.Contains(found, known) {
			t.Errorf("the scan missed %s", known)
		}
	}
}
