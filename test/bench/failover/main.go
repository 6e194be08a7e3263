// Command failover measures how long a name takes to change its answer
// after an event, for test/bench/plugins.sh. It sends one HTTP POST (the
// demo world's control endpoint taking a node offline or back), then asks
// each server for the name every interval, over UDP on its own socket,
// until the answer holds the wanted address, and prints, one line a server,
// the milliseconds from the POST's reply to that first answer:
//
//	post MS
//	ADDR MS QUERIES
//
// MS is "timeout" for a server whose answer did not change within -bound;
// failover then exits with status 1. Before the POST it checks that no
// server gives the wanted answer yet (status 2 otherwise).
//
// Usage:
//
//	failover -post URL -name NAME -want ADDR [-bound 30s] [-interval 1ms] SERVER...
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/miekg/dns"
)

func main() {
	post := flag.String("post", "", "URL to POST to (the event)")
	name := flag.String("name", "", "the name to ask for (type A)")
	want := flag.String("want", "", "the address the answer must hold")
	bound := flag.Duration("bound", 30*time.Second, "how long to wait for the answer to change")
	interval := flag.Duration("interval", time.Millisecond, "pause between two queries to a server")
	flag.Parse()
	servers := flag.Args()
	wantIP := net.ParseIP(*want)
	if *post == "" || *name == "" || wantIP == nil || len(servers) == 0 {
		fmt.Fprintln(os.Stderr, "usage: failover -post URL -name NAME -want ADDR [-bound D] [-interval D] SERVER...")
		os.Exit(2)
	}
	os.Exit(run(*post, dns.Fqdn(*name), wantIP, *bound, *interval, servers))
}

// run measures one event and returns the exit status.
func run(post, name string, want net.IP, bound, interval time.Duration, servers []string) int {
	probes := make([]*probe, len(servers))
	for i, s := range servers {
		p, err := newProbe(s, name, want)
		if err != nil {
			fmt.Fprintf(os.Stderr, "failover: %s: %v\n", s, err)
			return 2
		}
		defer p.conn.Close()
		if ok, err := p.ask(); err != nil || ok {
			fmt.Fprintf(os.Stderr, "failover: %s answers %s with %s before the event (err %v)\n", s, name, want, err)
			return 2
		}
		probes[i] = p
	}

	start := time.Now()
	resp, err := http.Post(post, "text/plain", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failover: post %s: %v\n", post, err)
		return 2
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "failover: post %s: %s\n", post, resp.Status)
		return 2
	}
	t0 := time.Now()
	fmt.Printf("post %.3f\n", ms(t0.Sub(start)))

	type result struct {
		took    time.Duration // 0: the bound ran out
		queries int
	}
	results := make([]chan result, len(probes))
	for i, p := range probes {
		results[i] = make(chan result, 1)
		go func() {
			n := 0
			for time.Since(t0) < bound {
				n++
				if ok, _ := p.ask(); ok { // an error counts as "not yet"
					results[i] <- result{time.Since(t0), n}
					return
				}
				time.Sleep(interval)
			}
			results[i] <- result{0, n}
		}()
	}
	status := 0
	for i, c := range results {
		r := <-c
		if r.took == 0 {
			fmt.Printf("%s timeout %d\n", servers[i], r.queries)
			status = 1
			continue
		}
		fmt.Printf("%s %.3f %d\n", servers[i], ms(r.took), r.queries)
	}
	return status
}

// probe asks one server for one name.
type probe struct {
	conn *dns.Conn
	msg  *dns.Msg
	want net.IP
}

func newProbe(server, name string, want net.IP) (*probe, error) {
	conn, err := dns.DialTimeout("udp", server, time.Second)
	if err != nil {
		return nil, err
	}
	return &probe{conn: conn, msg: new(dns.Msg).SetQuestion(name, dns.TypeA), want: want}, nil
}

// ask reports whether the server's answer holds the wanted address. It waits
// at most 500 ms; an answer to an earlier, timed-out query is skipped.
func (p *probe) ask() (bool, error) {
	p.msg.Id = dns.Id()
	deadline := time.Now().Add(500 * time.Millisecond)
	p.conn.SetDeadline(deadline)
	if err := p.conn.WriteMsg(p.msg); err != nil {
		return false, err
	}
	for {
		r, err := p.conn.ReadMsg()
		if err != nil {
			return false, err
		}
		if r.Id != p.msg.Id {
			continue
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.Equal(p.want) {
				return true, nil
			}
		}
		return false, nil
	}
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
