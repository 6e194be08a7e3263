package tailnet

import (
	"context"
	"net/netip"
	"strings"

	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/request"
)

// Metadata implements the metadata.Provider interface: for a query from a
// tailnet address it says which node is asking, read from the table, so
// that a view or a rewrite can answer per node, user or tag without a
// LocalAPI call per query. See README, "Who is asking".
func (t *Tailnet) Metadata(ctx context.Context, state request.Request) context.Context {
	tbl := t.table.Load()
	if tbl == nil {
		return ctx
	}
	addr, err := netip.ParseAddr(state.IP())
	if err != nil {
		return ctx
	}
	n := tbl.Node(addr.Unmap())
	if n == nil {
		return ctx
	}
	metadata.SetValueFunc(ctx, name+"/client_name", func() string { return n.Host })
	metadata.SetValueFunc(ctx, name+"/client_user", func() string { return n.User })
	metadata.SetValueFunc(ctx, name+"/client_tags", func() string { return strings.Join(n.Tags, ",") })
	return ctx
}
