package relay

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMustFormatOnlyOnConstants keeps the whole kind of "reply built from
// a client's word panics" out of the server: wire.MustFormat may appear only
// in package-level var declarations (lines formatted once from constants).
// Replies built at run time go through session.format or wire.Format.
func TestMustFormatOnlyOnConstants(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, decl := range f.Decls {
			if _, ok := decl.(*ast.FuncDecl); !ok {
				continue
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "MustFormat" {
					t.Errorf("%s: wire.MustFormat inside a function; use session.format or wire.Format", fset.Position(call.Pos()))
				}
				return true
			})
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
