package watch

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
)

// Service is a Tailscale Service this node can see: its name without
// "svc:", lowercase, and its virtual addresses. Its hosts are the nodes
// whose Routes hold one of them.
type Service struct {
	Name  string       // "cargo" for svc:cargo
	Addrs []netip.Addr // the VIPs; never empty
}

// dnsConfigSource is what a connection's tailscaled has taught the watch
// about its dns-config endpoint.
type dnsConfigSource int

const (
	dnsConfigUnknown dnsConfigSource = iota // not probed yet on this connection
	dnsConfigUse                            // it has records the status lacks: ask it on every status
	dnsConfigSkip                           // the status carries the records, or the endpoint has none or fails
)

// dnsConfigAPI is the part of a LocalAPI that reads the DNS configuration
// control pushed (/localapi/v0/dns-config, tailscaled 1.102 and later).
// It is optional: a LocalAPI without it gets the records from the status.
type dnsConfigAPI interface {
	DNSConfig(ctx context.Context) (*tailcfg.DNSConfig, error)
}

// control reads what control pushed besides the nodes: the extra DNS
// records, the services this node can see and the MagicDNS suffix. The
// status carries the records on a tailscaled that has them there (1.102).
// Once per connection, on the first Running status without records, the
// dns-config endpoint is probed: if it has records the status lacks, it
// is the source from then on; if it fails (1.86 has no such endpoint, and
// no records at all) or has none, it is not asked again.
func (w *watcher) control(ctx context.Context, st *ipnstate.Status) {
	raw := st.ExtraRecords
	api, ok := w.api.(dnsConfigAPI)
	switch {
	case !ok || st.BackendState != ipn.Running.String() || w.dnsConfig == dnsConfigSkip:
	case raw != nil && w.dnsConfig == dnsConfigUnknown:
		w.dnsConfig = dnsConfigSkip // the status carries them
	case raw == nil || w.dnsConfig == dnsConfigUse:
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cfg, err := api.DNSConfig(ctx)
		cancel()
		switch {
		case err != nil:
			w.dnsConfig = dnsConfigSkip
			log.Debugf("no dns-config at %s: %v", w.socketName(), err)
		case cfg != nil && (len(cfg.ExtraRecords) > 0 || w.dnsConfig == dnsConfigUse):
			w.dnsConfig, raw = dnsConfigUse, cfg.ExtraRecords
		default:
			w.dnsConfig = dnsConfigSkip
		}
	}
	if !slices.Equal(raw, w.rawRecords) { // parsed once per change, not per netmap
		w.rawRecords, w.records = raw, ParseRecords(raw)
	}
	w.suffix = ""
	if st.CurrentTailnet != nil {
		w.suffix = st.CurrentTailnet.MagicDNSSuffix
	}
	if w.suffix == "" && st.Self != nil {
		_, w.suffix, _ = strings.Cut(strings.TrimSuffix(st.Self.DNSName, "."), ".")
	}
	w.suffix = strings.ToLower(strings.TrimSuffix(w.suffix, "."))
	w.services = nil
	if st.Self != nil {
		w.services = services(st.Self.CapMap)
	}
}

// services decodes the services of a self node's CapMap, as tailscaled's
// /localapi/v0/services does: every "services/" entry holds one
// ServiceDetails, whose Name is the canonical name (the key's suffix is
// opaque). Sorted by name; entries that do not decode are skipped.
func services(cm tailcfg.NodeCapMap) []Service {
	var out []Service
	for capName := range cm {
		if !strings.HasPrefix(string(capName), string(tailcfg.NodeAttrPrefixServices)) {
			continue
		}
		details, err := tailcfg.UnmarshalNodeCapJSON[tailcfg.ServiceDetails](cm, capName)
		if err != nil || len(details) == 0 || len(details[0].Addrs) == 0 {
			continue
		}
		name, ok := strings.CutPrefix(string(details[0].Name), "svc:")
		if !ok || name == "" {
			continue
		}
		out = append(out, Service{Name: strings.ToLower(name), Addrs: details[0].Addrs})
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// routesOf returns the prefixes of allowed that are not one of addrs: the
// subnet routes and service VIPs a node carries.
func routesOf(allowed []netip.Prefix, addrs []netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range allowed {
		if p.IsSingleIP() && slices.Contains(addrs, p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}
