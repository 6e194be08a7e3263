package test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// TestMetricsReference checks docs/metrics.md against the sources: every
// metric of our plugins is in one of its tables with its type and labels,
// every metric in the tables exists, and every coredns_* series that its
// queries and alerts name exists with the labels they select on.
func TestMetricsReference(t *testing.T) {
	doc := filepath.Join("..", "docs", "metrics.md")
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ typ, labels string }
	rows := map[string]row{}
	re := regexp.MustCompile("^\\| `(coredns_\\w+)` \\| (\\w+) \\| ([^|]*) \\|")
	for line := range strings.Lines(string(b)) {
		if m := re.FindStringSubmatch(line); m != nil {
			rows[m[1]] = row{m[2], strings.ReplaceAll(strings.TrimSpace(m[3]), "`", "")}
		}
	}
	known := knownMetrics(t)
	for _, m := range pluginMetrics(t) {
		name := m.family.GetName()
		r, ok := rows[name]
		if !ok {
			t.Errorf("%s: %s is not in a table of %s", m.pos, name, doc)
			continue
		}
		delete(rows, name)
		if want := strings.ToLower(m.family.GetType().String()); r.typ != want {
			t.Errorf("%s: %s is a %s; %s says %s", m.pos, name, want, doc, r.typ)
		}
		if want := strings.Join(known[name].labels, ", "); r.labels != want {
			t.Errorf("%s: %s has labels %q; %s says %q", m.pos, name, want, doc, r.labels)
		}
	}
	for name := range rows {
		t.Errorf("%s lists %s, which no plugin defines", doc, name)
	}
	for _, err := range checkPromQL(string(b), known) {
		t.Errorf("%s: %v", doc, err)
	}
}

// TestDashboard checks docs/grafana/tailhorizon.json: it is a dashboard
// whose panels query through the data source variable, every coredns_*
// series in its queries exists (in our plugins or in the CoreDNS of
// go.mod) with the labels they select on, and it shows each plugin's
// requests and the series the operations docs point at.
func TestDashboard(t *testing.T) {
	file := filepath.Join("..", "docs", "grafana", "tailhorizon.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID         int
		Type       string
		Title      string
		Datasource struct{ Type, UID string }
		Targets    []struct {
			Expr  string
			RefID string `json:"refId"`
		}
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	}
	var dash struct {
		Title, UID string
		Panels     []panel
		Templating struct {
			List []struct{ Name, Type string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: title %q, uid %q, %d panels; want all three", file, dash.Title, dash.UID, len(dash.Panels))
	}
	vars := map[string]string{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable; the panels query ${datasource}")
	}

	known := knownMetrics(t)
	ids := map[int]bool{}
	var exprs strings.Builder
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %q; want ${datasource}", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, err := range checkPromQL(tg.Expr, known) {
				t.Errorf("panel %q, query %s: %v", p.Title, tg.RefID, err)
			}
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q, query %s: unbalanced brackets: %s", p.Title, tg.RefID, tg.Expr)
			}
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	for _, want := range []string{
		"coredns_tailnet_requests_total", "coredns_mdns_requests_total", "coredns_fallback_requests_total",
		"coredns_tailnet_peers", "coredns_tailnet_state", "coredns_tailnet_last_update_timestamp_seconds",
		"coredns_mdns_entries", "coredns_mdns_evictions_total", "coredns_mdns_lookup_duration_seconds_bucket",
		"coredns_fallback_upstream_errors_total", "coredns_fallback_private_nxdomain_total",
	} {
		if !strings.Contains(exprs.String(), want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}

// knownFamily is a metric defined in our plugins or in CoreDNS.
type knownFamily struct {
	typ    dto.MetricType
	labels []string
}

// knownMetrics returns the metrics of our plugins and of the CoreDNS module
// that go.mod names, by name.
func knownMetrics(t *testing.T) map[string]knownFamily {
	t.Helper()
	known := map[string]knownFamily{}
	add := func(ms []sourceMetric) {
		for _, m := range ms {
			var labels []string
			for _, mm := range m.family.GetMetric() {
				for _, l := range mm.GetLabel() {
					labels = append(labels, l.GetName())
				}
			}
			known[m.family.GetName()] = knownFamily{m.family.GetType(), labels}
		}
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/coredns/coredns")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m github.com/coredns/coredns: %v", err)
	}
	core := filepath.Join(strings.TrimSpace(string(out)), "plugin")
	err = filepath.WalkDir(core, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		ms, _ := packageMetrics(path, d.Name()) // metrics whose names do not resolve are left out
		add(ms)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	add(pluginMetrics(t))
	return known
}

// promSelector matches a coredns_* series in PromQL, with its label
// matchers if any.
var (
	promSelector = regexp.MustCompile(`\b(coredns_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// checkPromQL reports the coredns_* series in text that are not known, and
// the labels selected on that they do not have.
func checkPromQL(text string, known map[string]knownFamily) []error {
	var errs []error
	for _, m := range promSelector.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if strings.HasSuffix(name, "_") {
			continue // a family of series, as in "coredns_proxy_*"
		}
		f, ok := known[name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base, cut := strings.CutSuffix(name, suffix)
				if bf, found := known[base]; cut && found && (bf.typ == dto.MetricType_HISTOGRAM || bf.typ == dto.MetricType_SUMMARY) {
					f, ok = bf, true
					if suffix == "_bucket" {
						f.labels = append(slices.Clone(f.labels), "le")
					}
				}
			}
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no such metric in our plugins or CoreDNS", name))
			continue
		}
		for _, l := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(f.labels, l[1]) && l[1] != "instance" && l[1] != "job" {
				errs = append(errs, fmt.Errorf("%s has no label %q (has %q)", name, l[1], f.labels))
			}
		}
	}
	return errs
}
