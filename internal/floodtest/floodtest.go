// Package floodtest holds what the plugins' flood tests share: how many
// names a flood sends, how much live heap is left, and the slack a flood
// may leave that does not depend on the number of names.
package floodtest

import (
	"os"
	"runtime"
	"strconv"
)

// Slack is the heap a flood may leave that does not depend on how many
// names it sent (pools, the GC's own timing). A leak of 3 bytes a name or
// more exceeds it at 100,000 names.
const Slack = 256 << 10

// Names is how many unique names a flood sends: def, quick enough under
// -race for make test, or $FLOOD_NAMES for the 1,000,000-name run that
// docs/reliability.md records.
func Names(def int) int {
	if n, err := strconv.Atoi(os.Getenv("FLOOD_NAMES")); err == nil && n > 0 {
		return n
	}
	return def
}

// LiveHeap returns the bytes of heap a full collection leaves: what is
// still reachable.
func LiveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
