package test

// There is no container engine in CI, so these tests read the Dockerfile
// instead of building it: the instructions and stages are consistent, the
// Go version is go.mod's, the build context holds what the build needs,
// and the build command, run here as the build stage runs it, makes a
// static, stripped binary that names its version.

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/coremain"
)

var (
	dockerfile   = filepath.Join("..", "Dockerfile")
	dockerignore = filepath.Join("..", ".dockerignore")
)

// dockerInstruction is one instruction of a Dockerfile.
type dockerInstruction struct {
	line  int
	cmd   string            // upper case: FROM, RUN, ...
	flags map[string]string // --from=build, --chown=...
	args  string            // the rest, continuation lines joined
}

// parseDockerfile reads a Dockerfile: parser directives and comments are
// skipped, and lines ending in a backslash continue on the next line
// (comment lines inside an instruction are dropped, as Docker does).
// Heredocs are not supported.
func parseDockerfile(name string) ([]dockerInstruction, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []dockerInstruction
		pending strings.Builder
		start   int
	)
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		text := pending.String()
		pending.Reset()
		if strings.Contains(text, "<<") {
			return nil, fmt.Errorf("%s:%d: heredocs are not supported", name, start)
		}
		cmd, rest, _ := strings.Cut(text, " ")
		ins := dockerInstruction{line: start, cmd: strings.ToUpper(cmd), flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var flag string
			flag, rest, _ = strings.Cut(rest, " ")
			k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
			ins.flags[k] = v
			rest = strings.TrimSpace(rest)
		}
		ins.args = rest
		out = append(out, ins)
	}
	if pending.Len() > 0 {
		return nil, fmt.Errorf("%s: ends in a continued line", name)
	}
	return out, s.Err()
}

// dockerStage is one FROM and the instructions after it.
type dockerStage struct {
	name, image string
	ins         []dockerInstruction
}

// dockerStages splits the instructions into stages; the ARGs before the
// first FROM are returned apart.
func dockerStages(t *testing.T, all []dockerInstruction) (global []dockerInstruction, stages []*dockerStage) {
	t.Helper()
	for _, in := range all {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := &dockerStage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				t.Errorf("Dockerfile:%d: FROM %s; want FROM IMAGE [AS NAME]", in.line, in.args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Errorf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			global = append(global, in)
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a final one", len(stages))
	}
	return global, stages
}

// execArgs returns the arguments of a CMD or ENTRYPOINT in exec (JSON) form.
func execArgs(t *testing.T, in dockerInstruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil {
		t.Errorf("Dockerfile:%d: %s %s: want the exec form, a JSON array (the image has no shell): %v", in.line, in.cmd, in.args, err)
	}
	return args
}

// goBuild matches the build stage's go build command.
var goBuild = regexp.MustCompile(`(?:^|&&\s*)((?:\w+=\S+\s+)*go build .*)$`)

// TestDockerfile checks the Dockerfile's instructions and their
// consistency with the repository.
func TestDockerfile(t *testing.T) {
	all, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	known := []string{"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
		"LABEL", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
	for _, in := range all {
		if !slices.Contains(known, in.cmd) {
			t.Errorf("Dockerfile:%d: unknown instruction %s", in.line, in.cmd)
		}
		if in.args == "" {
			t.Errorf("Dockerfile:%d: %s has no arguments", in.line, in.cmd)
		}
	}
	_, stages := dockerStages(t, all)
	build, final := stages[0], stages[len(stages)-1]

	t.Run("stages", func(t *testing.T) {
		names := map[string]int{}
		for i, st := range stages {
			if st.name == "" {
				continue
			}
			if _, dup := names[st.name]; dup {
				t.Errorf("stage %q is named twice", st.name)
			}
			names[st.name] = i
		}
		for i, st := range stages {
			for _, in := range st.ins {
				from, ok := in.flags["from"]
				if !ok || in.cmd != "COPY" {
					continue
				}
				if j, ok := names[from]; !ok || j >= i {
					t.Errorf("Dockerfile:%d: COPY --from=%s: no stage of that name before this one", in.line, from)
				}
			}
		}
		if build.name == "" {
			t.Error("the first stage has no name; the final stage copies from it by name")
		}
	})

	t.Run("go version", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
		if m == nil {
			t.Fatal("go.mod has no go line")
		}
		want := "golang:" + string(m[1])
		if image := build.image; image != want && !strings.HasPrefix(image, want+"-") && !strings.HasPrefix(image, want+".") {
			t.Errorf("build stage FROM %s; want %s, go.mod's Go (major.minor)", image, want)
		}
	})

	// The go build command, and where it writes the binary.
	var buildCmd, out string
	t.Run("build command", func(t *testing.T) {
		declared := map[string]bool{}
		for _, in := range build.ins {
			if in.cmd == "ARG" {
				k, _, _ := strings.Cut(in.args, "=")
				declared[k] = true
			}
			if in.cmd != "RUN" {
				continue
			}
			m := goBuild.FindStringSubmatch(in.args)
			if m == nil {
				continue
			}
			buildCmd = m[1]
			f := strings.Fields(buildCmd)
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/coredns"} {
				if !slices.Contains(f, want) {
					t.Errorf("Dockerfile:%d: %s: want %s", in.line, buildCmd, want)
				}
			}
			ld := regexp.MustCompile(`-ldflags[= ]"([^"]*)"`).FindStringSubmatch(buildCmd)
			if ld == nil || !slices.Contains(strings.Fields(ld[1]), "-s") || !slices.Contains(strings.Fields(ld[1]), "-w") ||
				!strings.Contains(ld[1], "-X main.version=${VERSION}") {
				t.Errorf(`Dockerfile:%d: %s: want -ldflags "-s -w -X main.version=${VERSION}"`, in.line, buildCmd)
			}
			if !declared["VERSION"] {
				t.Errorf("Dockerfile:%d: VERSION is used before ARG VERSION in the build stage", in.line)
			}
			if i := slices.Index(f, "-o"); i >= 0 && i+1 < len(f) {
				out = f[i+1]
			}
		}
		if buildCmd == "" {
			t.Fatal("no RUN ... go build in the build stage")
		}
		if out == "" {
			t.Errorf("%s: no -o; want the binary at a known path", buildCmd)
		}
	})

	t.Run("final stage", func(t *testing.T) {
		var binary, user string
		var ports, entrypoint, cmd []string
		for _, in := range final.ins {
			switch in.cmd {
			case "COPY":
				if f := strings.Fields(in.args); in.flags["from"] == build.name && len(f) == 2 && f[0] == out {
					binary = f[1]
				}
			case "USER":
				user = in.args
			case "EXPOSE":
				ports = append(ports, strings.Fields(in.args)...)
			case "ENTRYPOINT":
				entrypoint = execArgs(t, in)
			case "CMD":
				cmd = execArgs(t, in)
			case "RUN":
				t.Errorf("Dockerfile:%d: RUN in the final stage; it has no shell", in.line)
			}
		}
		if binary == "" {
			t.Errorf("the final stage does not COPY --from=%s %s", build.name, out)
		}
		if len(entrypoint) == 0 || entrypoint[0] != binary {
			t.Errorf("ENTRYPOINT %q; want the binary, %s", entrypoint, binary)
		}
		if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
			t.Errorf("USER %q; want a user other than root", user)
		}
		for _, want := range []string{"53/udp", "53/tcp"} {
			if !slices.Contains(ports, want) {
				t.Errorf("EXPOSE %q; want %s", ports, want)
			}
		}
		if i := slices.Index(cmd, "-conf"); i < 0 || i+1 >= len(cmd) || cmd[i+1] != "/etc/coredns/Corefile" {
			t.Errorf("CMD %q; want -conf /etc/coredns/Corefile, the documented mount path", cmd)
		}
	})

	t.Run("build context", func(t *testing.T) {
		ignore := readDockerignore(t)
		need := []string{"go.mod", "go.sum"}
		// Every package of the module that the binary is built from.
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/coredns")
		cmd.Dir = ".."
		listed, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		root, err := filepath.Abs("..")
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range strings.Fields(string(listed)) {
			rel, err := filepath.Rel(root, dir)
			if err != nil {
				t.Fatal(err)
			}
			// A file in it stands for the package's sources.
			need = append(need, filepath.ToSlash(rel)+"/source.go")
		}
		// And what COPY takes from the context.
		for _, st := range stages {
			for _, in := range st.ins {
				if in.cmd != "COPY" && in.cmd != "ADD" || in.flags["from"] != "" {
					continue
				}
				f := strings.Fields(in.args)
				for _, src := range f[:len(f)-1] {
					if src == "." {
						continue
					}
					if _, err := os.Stat(filepath.Join("..", src)); err != nil {
						t.Errorf("Dockerfile:%d: COPY %s: %v", in.line, src, err)
					}
					need = append(need, path.Clean(src))
				}
			}
		}
		for _, p := range need {
			if pat := ignore.match(p); pat != "" {
				t.Errorf(".dockerignore: %q leaves %s out of the build context; the build needs it", pat, strings.TrimSuffix(p, "/source.go"))
			}
		}
		for _, p := range []string{".git/HEAD", "bin/coredns"} {
			if ignore.match(p) == "" {
				t.Errorf(".dockerignore: %s is in the build context; leave it out", p)
			}
		}
	})
}

// dockerIgnore is the list of patterns of a .dockerignore.
type dockerIgnore []string

// readDockerignore reads ../.dockerignore. Exceptions (!) are not supported.
func readDockerignore(t *testing.T) dockerIgnore {
	t.Helper()
	b, err := os.ReadFile(dockerignore)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerIgnore
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: %s: exceptions are not supported by this test", line)
		}
		d = append(d, path.Clean(strings.TrimPrefix(line, "/")))
	}
	return d
}

// match returns the pattern that leaves the context path p (slash-
// separated, relative to the root) out, or "". A pattern that matches a
// directory leaves out everything below it.
func (d dockerIgnore) match(p string) string {
	parts := strings.Split(p, "/")
	for _, pat := range d {
		for i := 1; i <= len(parts); i++ {
			if globMatch(strings.Split(pat, "/"), parts[:i]) {
				return pat
			}
		}
	}
	return ""
}

// globMatch matches path elements against pattern elements, where "**"
// matches any number of elements, as in .dockerignore.
func globMatch(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if globMatch(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], parts[0])
	return err == nil && ok && globMatch(pat[1:], parts[1:])
}

// TestDockerfileBuild runs the build stage's go build command here, as the
// image build runs it, and checks the binary: statically linked (it runs
// in a distroless image without libc), stripped, and naming the version
// passed in VERSION. A first run compiles everything with -trimpath
// (about two minutes on two cores); -short skips it.
func TestDockerfileBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	all, err := parseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	_, stages := dockerStages(t, all)
	var buildCmd string
	for _, in := range stages[0].ins {
		if m := goBuild.FindStringSubmatch(in.args); in.cmd == "RUN" && m != nil {
			buildCmd = m[1]
		}
	}
	if buildCmd == "" {
		t.Fatal("no RUN ... go build in the build stage")
	}
	f := strings.Fields(buildCmd)
	i := slices.Index(f, "-o")
	if i < 0 || i+1 >= len(f) {
		t.Fatalf("%s: no -o", buildCmd)
	}
	bin := filepath.Join(t.TempDir(), "coredns")
	buildCmd = strings.Replace(buildCmd, " -o "+f[i+1]+" ", " -o "+bin+" ", 1)

	const version = "v0.0.0-dockerfile-test"
	cmd := exec.Command("sh", "-c", buildCmd)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", buildCmd, err, out)
	}

	out, err := exec.Command(bin, "-version").CombinedOutput()
	if want := "CoreDNS-" + coremain.CoreVersion + "+tailhorizon-" + version; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("coredns -version: %v: %q; want %q", err, out, want)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked; want a static binary (CGO_ENABLED=0)", bin)
			break
		}
	}
	if ef.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table; want it stripped (-s)", bin)
	}
	if ef.Section(".debug_info") != nil || ef.Section(".zdebug_info") != nil {
		t.Errorf("%s has DWARF; want it stripped (-w)", bin)
	}
}
