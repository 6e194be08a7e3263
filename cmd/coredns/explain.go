package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// explainUsage is the synopsis of coredns -explain.
const explainUsage = "usage: coredns -explain [-status ADDRESS] [-json] [-upstream] NAME [TYPE]"

// explainMain runs coredns -explain: it asks the status listener of a
// running coredns for the trace of NAME and prints it. It returns the
// exit code.
func explainMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, explainUsage) }
	addr := fs.String("status", "127.0.0.1:9154", "the status listener, as the status directive names it")
	raw := fs.Bool("json", false, "print the traces as the listener gives them")
	upstream := fs.Bool("upstream", false, "for a public answer, ask fallback's upstreams (the one query a trace may send)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return 2
	}
	q := url.Values{"name": {fs.Arg(0)}}
	if fs.NArg() == 2 {
		q.Set("type", fs.Arg(1))
	}
	if *upstream {
		q.Set("upstream", "1")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + *addr + "/explain?" + q.Encode())
	if err != nil {
		fmt.Fprintf(stderr, "coredns -explain: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "coredns -explain: %s: %s %v\n", *addr, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	if *raw {
		stdout.Write(body)
		return 0
	}
	var traces []trace.Trace
	if err := json.Unmarshal(body, &traces); err != nil {
		fmt.Fprintf(stderr, "coredns -explain: %v\n", err)
		return 1
	}
	if len(traces) == 0 {
		fmt.Fprintf(stdout, "no server block with a status directive on %s serves %s\n", *addr, fs.Arg(0))
		return 1
	}
	for i, tr := range traces {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printTrace(stdout, tr)
	}
	return 0
}

// printTrace prints one trace, a step a line.
func printTrace(w io.Writer, tr trace.Trace) {
	where := tr.Server
	if tr.View != "" {
		where += " (view " + tr.View + ")"
	}
	fmt.Fprintf(w, "%s %s in %s\n", tr.Name, tr.Type, where)
	rule := "no rule"
	if tr.Rule != "" {
		rule = "rule " + tr.Rule
	}
	fmt.Fprintf(w, "  may answer: %s (%s)\n", tr.Allowed, rule)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, st := range tr.Steps {
		verdict := string(st.Verdict)
		if st.Reason != "" {
			verdict += ": " + st.Reason
		}
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\n", i+1, st.Source, verdict, st.Knows)
	}
	tw.Flush()
	fmt.Fprintf(w, "  => %s\n", outcome(tr))
	for _, rr := range tr.Records {
		fmt.Fprintf(w, "     %s\n", strings.ReplaceAll(rr, "\t", " "))
	}
}

// outcome says in words what a query gets, by the trace's verdict.
func outcome(tr trace.Trace) string {
	switch {
	case tr.Verdict == trace.Answer && len(tr.Records) == 0:
		return "NODATA from " + tr.Source
	case tr.Verdict == trace.Answer:
		return "answered by " + tr.Source
	case tr.Verdict == trace.NXDomain:
		return "NXDOMAIN from " + tr.Source + " (no fallthrough)"
	case tr.Verdict == trace.Ask:
		return "a query asks the LAN, and waits for its answer"
	case tr.Verdict == trace.Blocked:
		return "NXDOMAIN from fallback: a private name no allowed source answers"
	case tr.Source == "upstreams":
		return "the public answer, from fallback's upstreams"
	case tr.Verdict == trace.Public:
		return "the public answer: the rest of the chain, then fallback's upstreams"
	}
	return string(tr.Verdict) + " by " + tr.Source
}
