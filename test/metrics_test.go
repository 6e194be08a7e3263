package test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// sourceMetric is a metric defined in a plugin's source.
type sourceMetric struct {
	pos                  string // file:line of the definition
	plugin               string // the directory under plugin/
	namespace, subsystem string
	family               *dto.MetricFamily
}

// TestMetricNaming lints the metrics of our plugins with promlint, as
// CoreDNS's test/metric_naming_test.go does, and checks the conventions of
// STYLE 3.7: Namespace plugin.Namespace, Subsystem the directive name,
// defined in metrics.go, unique names, and no label for the query name.
func TestMetricNaming(t *testing.T) {
	metrics := pluginMetrics(t)
	if len(metrics) == 0 {
		t.Fatal("found no metric definitions under ../plugin")
	}

	var families []*dto.MetricFamily
	seen := map[string]string{}
	for _, m := range metrics {
		name := m.family.GetName()
		families = append(families, m.family)
		if prev, dup := seen[name]; dup {
			t.Errorf("%s: metric %s is also defined at %s", m.pos, name, prev)
		}
		seen[name] = m.pos
		if m.namespace != plugin.Namespace {
			t.Errorf("%s: %s: Namespace %q; want plugin.Namespace (%q)", m.pos, name, m.namespace, plugin.Namespace)
		}
		if m.subsystem != m.plugin {
			t.Errorf("%s: %s: Subsystem %q; want the directive name %q", m.pos, name, m.subsystem, m.plugin)
		}
		if filepath.Base(strings.Split(m.pos, ":")[0]) != "metrics.go" {
			t.Errorf("%s: %s: metrics live only in metrics.go", m.pos, name)
		}
		for _, mm := range m.family.GetMetric() {
			for _, l := range mm.GetLabel() {
				switch l.GetName() {
				case "name", "qname", "query":
					t.Errorf("%s: %s: label %q; never label by the query name", m.pos, name, l.GetName())
				}
			}
		}
	}

	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsDocumented checks that every metric is named in its plugin's
// README, under "## Metrics".
func TestMetricsDocumented(t *testing.T) {
	sections := map[string]string{}
	for _, m := range pluginMetrics(t) {
		section, ok := sections[m.plugin]
		if !ok {
			readme := filepath.Join("..", "plugin", m.plugin, "README.md")
			b, err := os.ReadFile(readme)
			if err != nil {
				t.Errorf("%s: %v", readme, err)
			}
			section = readmeSection(string(b), "Metrics")
			sections[m.plugin] = section
		}
		if !strings.Contains(section, m.family.GetName()) {
			t.Errorf("%s: %s is not listed under ## Metrics in plugin/%s/README.md", m.pos, m.family.GetName(), m.plugin)
		}
	}
}

// readmeSection returns the text of the "## title" section of a README.
func readmeSection(readme, title string) string {
	var b strings.Builder
	in := false
	for line := range strings.SplitSeq(readme, "\n") {
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == title
			continue
		}
		if in {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// pluginMetrics parses the non-test Go files of every plugin and returns
// the metrics they define with prometheus or promauto constructors.
func pluginMetrics(t *testing.T) []sourceMetric {
	t.Helper()
	var all []sourceMetric
	for _, dir := range pluginDirs(t) {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if path != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			ms, err := packageMetrics(path, filepath.Base(dir))
			all = append(all, ms...)
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
	return all
}

var constructor = regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary)(Vec|Func)?$`)

// packageMetrics returns the metrics defined by the package in dir.
func packageMetrics(dir, pluginName string) ([]sourceMetric, error) {
	fset := token.NewFileSet()
	var files []*ast.File
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, 0)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	consts := stringConsts(files)

	var metrics []sourceMetric
	var errs []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			kind := constructor.FindStringSubmatch(sel.Sel.Name)
			if kind == nil {
				return true
			}
			opts, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			pos := fset.Position(call.Pos())
			m := sourceMetric{pos: fmt.Sprintf("%s:%d", pos.Filename, pos.Line), plugin: pluginName}
			var name, help string
			for _, elt := range opts.Elts {
				kv, ok := elt.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok := kv.Key.(*ast.Ident)
				if !ok {
					continue
				}
				var dst *string
				switch key.Name {
				case "Namespace":
					dst = &m.namespace
				case "Subsystem":
					dst = &m.subsystem
				case "Name":
					dst = &name
				case "Help":
					dst = &help
				default:
					continue
				}
				v, ok := stringValue(kv.Value, consts)
				if !ok {
					errs = append(errs, fmt.Sprintf("%s: cannot resolve %s", m.pos, key.Name))
				}
				*dst = v
			}
			typ := map[string]dto.MetricType{
				"Counter":   dto.MetricType_COUNTER,
				"Gauge":     dto.MetricType_GAUGE,
				"Histogram": dto.MetricType_HISTOGRAM,
				"Summary":   dto.MetricType_SUMMARY,
			}[kind[1]]
			fq := prometheus.BuildFQName(m.namespace, m.subsystem, name)
			m.family = &dto.MetricFamily{Name: &fq, Help: &help, Type: &typ}
			if kind[2] == "Vec" && len(call.Args) > 1 {
				m.family.Metric = []*dto.Metric{{Label: labels(call.Args[1], consts)}}
			}
			metrics = append(metrics, m)
			return true
		})
	}
	if len(errs) > 0 {
		return metrics, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return metrics, nil
}

// stringConsts returns the package-level string constants of files.
func stringConsts(files []*ast.File) map[string]string {
	consts := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringValue(vs.Values[i], consts); ok {
							consts[n.Name] = v
						}
					}
				}
			}
		}
	}
	return consts
}

// stringValue evaluates a constant string expression: a literal, a
// package constant, plugin.Namespace, or a concatenation of those.
func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "plugin" && e.Sel.Name == "Namespace" {
			return plugin.Namespace, true
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			x, okx := stringValue(e.X, consts)
			y, oky := stringValue(e.Y, consts)
			return x + y, okx && oky
		}
	case *ast.ParenExpr:
		return stringValue(e.X, consts)
	}
	return "", false
}

// labels returns the label names in a []string{...} literal, with a
// placeholder value.
func labels(e ast.Expr, consts map[string]string) []*dto.LabelPair {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var pairs []*dto.LabelPair
	for _, elt := range lit.Elts {
		if name, ok := stringValue(elt, consts); ok {
			value := "x"
			pairs = append(pairs, &dto.LabelPair{Name: &name, Value: &value})
		}
	}
	return pairs
}
