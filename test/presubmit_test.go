package test

// These tests check the tree itself: file names, printing, the import rules
// between plugins, and the files every plugin has. Modelled on CoreDNS's
// test/presubmit_test.go.

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const repoModule = "github.com/tailhorizon/tailhorizon"

// goFiles returns the .go files of the repository, skipping hidden
// directories, vendor, testdata and bin.
func goFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != ".." && (strings.HasPrefix(name, ".") || name == "vendor" || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && filepath.Ext(name) == ".go" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no .go files found under ..")
	}
	return files
}

func TestFileNameHyphen(t *testing.T) {
	for _, path := range goFiles(t) {
		if strings.Contains(filepath.Base(path), "-") {
			t.Errorf("file %s has a hyphen; use underscores in file names", path)
		}
	}
}

// TestNoPrint checks that only cmd/ and test/ print to standard output;
// everything else logs through clog.
func TestNoPrint(t *testing.T) {
	for _, path := range goFiles(t) {
		rel := filepath.ToSlash(strings.TrimPrefix(path, ".."+string(filepath.Separator)))
		if strings.HasPrefix(rel, "cmd/") || strings.HasPrefix(rel, "test/") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Errorf("parse %s: %v", path, err)
			continue
		}
		fmtName := ""
		for _, im := range f.Imports {
			if im.Path.Value != `"fmt"` {
				continue
			}
			fmtName = "fmt"
			if im.Name != nil {
				fmtName = im.Name.Name
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fun := call.Fun.(type) {
			case *ast.Ident:
				// The builtins: not declared in this file.
				if (fun.Name == "print" || fun.Name == "println") && fun.Obj == nil {
					t.Errorf("%s: %s call; use clog", fset.Position(call.Pos()), fun.Name)
				}
			case *ast.SelectorExpr:
				id, ok := fun.X.(*ast.Ident)
				if ok && fmtName != "" && id.Name == fmtName && strings.HasPrefix(fun.Sel.Name, "Print") {
					t.Errorf("%s: fmt.%s call; use clog", fset.Position(call.Pos()), fun.Sel.Name)
				}
			}
			return true
		})
	}
}

// TestImportRules checks the dependency rules between the plugins (STYLE
// 3.1): plugins never import each other, plugin/tailnet does not depend on
// hashicorp/mdns, and plugin/mdns does not depend on tailscale.com. Like
// tailscale's TestDeps, it asks the go command for the full (non-test)
// dependency list.
func TestImportRules(t *testing.T) {
	deps := pluginDeps(t)
	forbidden := map[string][]string{
		"tailnet": {"github.com/hashicorp/mdns"},
		"mdns":    {"tailscale.com"},
	}
	if _, ok := deps[repoModule+"/plugin/tailnet"]; !ok {
		t.Errorf("package %s/plugin/tailnet not found", repoModule)
	}
	if _, ok := deps[repoModule+"/plugin/mdns"]; !ok {
		t.Log("no plugin/mdns yet: its rule is not checked")
	}
	for pkg, d := range deps {
		plugin := pluginOf(pkg)
		bad := map[string][]string{} // rule -> offending dependencies
		for _, dep := range d.all {
			for _, f := range forbidden[plugin] {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					bad[f] = append(bad[f], dep)
				}
			}
			if other := pluginOf(dep); other != "" && other != plugin {
				bad["plugin/"+other] = append(bad["plugin/"+other], dep)
			}
		}
		for rule, list := range bad {
			// Name a direct import if there is one: that is the line to fix.
			via := list[0]
			for _, dep := range list {
				if slices.Contains(d.direct, dep) {
					via = dep
					break
				}
			}
			t.Errorf("%s depends on %s (through %s; %d of its dependencies); plugin/%s must not depend on %s",
				pkg, rule, via, len(list), plugin, rule)
		}
	}
}

// TestLayering checks the layers of docs/architecture.md, by import path
// inside this module (non-test code only):
//   - internal/ is production helpers: it imports nothing of plugin/, cmd/
//     or test/;
//   - a plugin's nested internal packages (its machinery) never import the
//     plugin itself, nor one another's plugin;
//   - nothing but tests imports test/;
//   - no binary links package testing.
func TestLayering(t *testing.T) {
	deps := goDeps(t, "./...")
	for pkg, d := range deps {
		rel, ok := strings.CutPrefix(pkg, repoModule+"/")
		if !ok || strings.HasPrefix(rel, "test/") || rel == "test" {
			continue
		}
		for _, dep := range d.direct {
			drel, ok := strings.CutPrefix(dep, repoModule+"/")
			if !ok {
				continue
			}
			var why string
			switch {
			case strings.HasPrefix(drel, "test/"):
				why = "only tests import test/"
			case strings.HasPrefix(rel, "internal/") && !strings.HasPrefix(drel, "internal/"):
				why = "internal/ holds helpers below the plugins and binaries"
			case strings.HasPrefix(rel, "plugin/") && strings.HasPrefix(drel, "cmd/"):
				why = "plugins do not import the binaries"
			case strings.Contains(rel, "/internal/") && strings.HasPrefix(rel, "plugin/") && drel == "plugin/"+pluginOf(pkg):
				why = "a plugin's machinery does not import its face"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", rel, drel, why)
			}
		}
	}
	for _, bin := range []string{"./cmd/coredns", "./cmd/demo"} {
		for pkg, d := range goDeps(t, bin) {
			if slices.Contains(d.all, "testing") || pkg == "testing" {
				t.Errorf("%s links package testing (through %s)", bin, pkg)
				break
			}
		}
	}
}

// packageDeps are the dependencies of one package.
type packageDeps struct {
	direct []string // imports
	all    []string // transitive dependencies, not for tests
}

// pluginDeps returns the dependencies of every package under plugin/,
// keyed by import path.
func pluginDeps(t *testing.T) map[string]packageDeps {
	t.Helper()
	return goDeps(t, "./plugin/...")
}

// goDeps returns the dependencies of the packages that patterns match
// (with -deps, of those packages' dependencies too), keyed by import path.
func goDeps(t *testing.T, patterns ...string) map[string]packageDeps {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	args := append([]string{"list", "-e", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`}, patterns...)
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	deps := map[string]packageDeps{}
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		f := strings.Split(s.Text(), "|")
		if len(f) != 3 {
			t.Fatalf("go list: unexpected line %q", s.Text())
		}
		deps[f[0]] = packageDeps{direct: strings.Fields(f[1]), all: strings.Fields(f[2])}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return deps
}

// pluginOf returns the plugin that package pkg belongs to, or "" if it is
// not in one of ours.
func pluginOf(pkg string) string {
	rest, ok := strings.CutPrefix(pkg, repoModule+"/plugin/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// TestPluginFiles checks that every plugin has the files of STYLE 3.2.
func TestPluginFiles(t *testing.T) {
	dirs := pluginDirs(t)
	for _, dir := range dirs {
		for _, want := range []string{"README.md", "setup.go", "metrics.go", "ready.go", "log_test.go"} {
			if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
				t.Errorf("%s: missing %s", dir, want)
			}
		}
		name := filepath.Base(dir)
		if name != strings.ToLower(name) || strings.ContainsAny(name, "-_") {
			t.Errorf("%s: a plugin directory name is lowercase, without - or _", dir)
		}
		if pkg := packageName(t, filepath.Join(dir, "setup.go")); pkg != "" && pkg != name {
			t.Errorf("%s: package %s; want package %s", dir, pkg, name)
		}
	}
}

// pluginDirs returns the directories under ../plugin.
func pluginDirs(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "plugin")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("no plugins under %s", root)
	}
	return dirs
}

// packageName returns the package clause of the Go file at path, or "" if
// it cannot be read.
func packageName(t *testing.T, path string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly)
	if err != nil {
		return ""
	}
	return f.Name.Name
}

// TestImportOrdering checks the import groups of STYLE 3.2, as CoreDNS
// does: standard library, then github.com/coredns, then third-party, each
// group separated by a blank line. This module's own packages go with the
// third-party ones or in a last group of their own.
func TestImportOrdering(t *testing.T) {
	const (
		std = iota
		coredns
		thirdParty
		ours
	)
	kind := func(path string) int {
		switch {
		case path == repoModule || strings.HasPrefix(path, repoModule+"/"):
			return ours
		case strings.HasPrefix(path, "github.com/coredns/"):
			return coredns
		case strings.Contains(path, "."):
			return thirdParty
		}
		return std
	}
	names := []string{"standard library", "coredns", "third-party", repoModule}
	for _, path := range goFiles(t) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("parse %s: %v", path, err)
			continue
		}
		prevEnd, group := 0, -1 // group: the kind of the current group
		for _, im := range f.Imports {
			start := fset.Position(im.Pos()).Line
			if im.Doc != nil {
				start = fset.Position(im.Doc.Pos()).Line
			}
			p, _ := strconv.Unquote(im.Path.Value)
			k := kind(p)
			switch {
			case group < 0:
				group = k
			case start-prevEnd > 1: // a new group
				if k <= group {
					t.Errorf("%s: import %q starts a %s group after a %s group; want standard library, coredns, third-party",
						fset.Position(im.Pos()), p, names[k], names[group])
				}
				group = k
			case k == group, k == ours && group == thirdParty:
			default:
				t.Errorf("%s: import %q (%s) is in a %s group; separate the groups with a blank line",
					fset.Position(im.Pos()), p, names[k], names[group])
			}
			prevEnd = fset.Position(im.End()).Line
		}
	}
}
