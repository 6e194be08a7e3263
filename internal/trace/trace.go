// Package trace is what the plugins of a server block say about one name
// and about their state, for the status plugin's trace and page: read
// from live state, without side effects (no question on the LAN, no
// upstream query, no probe). Each plugin fills in its part; the status
// plugin finds them in its server block by name and a small interface.
//
// Plugins never import each other; this package is how they agree.
package trace

import (
	"time"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
)

// Verdict is what one source does with a name.
type Verdict string

// The verdicts.
const (
	Answer   Verdict = "answer"   // the source answers it, with Records (none for NODATA)
	NXDomain Verdict = "nxdomain" // the source answers NXDOMAIN: nothing after it is asked
	Pass     Verdict = "pass"     // the source passes it on to the next (fallthrough)
	Skip     Verdict = "skip"     // not the source's zone, or the policy leaves it out
	Ask      Verdict = "ask"      // mdns: a query would ask the LAN and wait; the trace does not
	Public   Verdict = "public"   // fallback: the public answer (the rest of the chain, then the upstreams)
	Blocked  Verdict = "blocked"  // fallback: a private name no source answers gets NXDOMAIN
)

// Step is one source's part in the decision for a name.
type Step struct {
	Source  string   `json:"source"`            // the plugin: fallback, tailnet, mdns
	Zone    string   `json:"zone,omitempty"`    // the zone of the name it serves; "" if none
	Knows   string   `json:"knows"`             // what it knows about the name, in a few words
	Verdict Verdict  `json:"verdict"`           // what a query would get from it
	Reason  string   `json:"reason,omitempty"`  // why it passes the name on or answers NXDOMAIN
	Records []string `json:"records,omitempty"` // what it answers, in presentation format
}

// Trace is the decision for one name in one server block.
type Trace struct {
	Name    string    `json:"name"`   // as asked, lowercase, with a trailing dot
	Type    string    `json:"type"`   // the query type: A, AAAA...
	Server  string    `json:"server"` // the server block's key, as dns://example.org:53
	View    string    `json:"view,omitempty"`
	Allowed string    `json:"allowed"` // the sources the policy allows: "tailnet lan public"
	Rule    string    `json:"rule,omitempty"`
	Steps   []Step    `json:"steps"`   // each source, in chain order
	Verdict Verdict   `json:"verdict"` // the verdict of the source that decides
	Source  string    `json:"source"`  // the source that decides: tailnet, lan, public
	Records []string  `json:"records"` // its answer, if it answers
	At      time.Time `json:"at"`      // when the trace was made
}

// Peer is one node of the tailnet, as the status page shows it.
type Peer struct {
	Name      string    `json:"name"` // the host label; "" if none
	FQDN      string    `json:"fqdn"`
	Addrs     []string  `json:"addrs"`
	Tags      []string  `json:"tags,omitempty"`
	Self      bool      `json:"self,omitempty"`
	Online    bool      `json:"online"`    // control's word
	Reachable bool      `json:"reachable"` // what a query would get: its tailnet address
	Why       string    `json:"why,omitempty"`
	Probe     string    `json:"probe"` // the last probe result: ok, failed, none
	RTT       string    `json:"rtt,omitempty"`
	Expiry    time.Time `json:"expiry,omitzero"` // when its node key expires; zero if never
	Expired   bool      `json:"expired,omitempty"`
}

// Tailnet is what a tailnet instance serves from.
type Tailnet struct {
	Zones    []string  `json:"zones"`
	State    string    `json:"state"` // live, stale, down; "" before the first table
	Running  bool      `json:"running"`
	Updated  time.Time `json:"updated,omitzero"`
	LostAt   time.Time `json:"lost_at,omitzero"`
	Peers    []Peer    `json:"peers"`
	Services []Service `json:"services"`
	Records  []string  `json:"records"` // control's extra records, in presentation format
}

// Service is a Tailscale Service.
type Service struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
}

// LANEntry is one host of the mdns cache.
type LANEntry struct {
	Host     string    `json:"host"` // the label, without .local
	Addrs    []string  `json:"addrs"`
	Negative bool      `json:"negative,omitempty"` // it did not answer
	Expires  time.Time `json:"expires"`
}

// LAN is what an mdns instance serves from.
type LAN struct {
	Zones     []string   `json:"zones"`
	Listening bool       `json:"listening"`
	Entries   []LANEntry `json:"entries"`
}

// Switch is a change of the source that answered a name.
type Switch struct {
	At   time.Time `json:"at"`
	Name string    `json:"name"`
	From string    `json:"from"` // "" for the first answer seen
	To   string    `json:"to"`
	Why  string    `json:"why,omitempty"`
}

// Begin starts source's step for qname: the zone of zones it falls in,
// or, when it falls in none or the policy's allowed sources leave out
// need (the source itself), a finished Skip that says so, with done set.
func Begin(source string, zones []string, qname string, allowed, need policy.Source, left string) (st Step, done bool) {
	st = Step{Source: source, Zone: zone.Match(zones, qname)}
	switch {
	case st.Zone == "":
		st.Verdict, st.Knows = Skip, "not in its zones"
		return st, true
	case allowed&need == 0:
		st.Verdict, st.Knows = Skip, "the policy leaves "+left+" out"
		return st, true
	}
	return st, false
}

// Decide ends st: an Answer with records (none for NODATA) when answered;
// else the name is passed on for why, as Pass when it falls through and
// as NXDomain when not.
func (st *Step) Decide(answered bool, records []string, through bool, why policy.Reason) {
	switch {
	case answered:
		st.Verdict, st.Records = Answer, records
	case through:
		st.Verdict, st.Reason = Pass, why.String()
	default:
		st.Verdict, st.Reason = NXDomain, why.String()
	}
}
