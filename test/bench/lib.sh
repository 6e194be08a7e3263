# lib.sh: what the dnsperf scripts of test/bench (and test/load.sh) share.
# Source it after `set -euo pipefail` and setting SCRIPT (the name used in
# messages); then call bench_init. It defines:
#
#   bench_init TOOL...     checks the tools, makes TMP, and stops on exit every
#                          process started through it (PIDS) and removes TMP
#   build_coredns [BIN]    sets COREDNS: BIN, or `make build`'s bin/coredns
#   build_demo             sets DEMO: $DEMO, or a fresh bin/demo
#   free_port              a port free on 127.0.0.1, not handed out before
#   start NAME TEXT CPU    runs coredns with Corefile TEXT pinned to CPU
#   stop NAME              stops it
#   start_servers CPU S... starts each server S with BODY[S] (and PORT, MPORT)
#   start_authority TEXT   the public authority (TEXT: its zone file), on CLIENT_CPU
#   PUBLIC_ZONE            the demo's public zone, with more public-only names (after start_world)
#   device_body SOCK IFACE the plugins of the device server (cache ... mdns)
#   start_world            the demo world (cmd/demo/world) on CLIENT_CPU
#   node VERB NAME         takes a node of the world offline or online
#   wait_answer NAME QNAME [WANT] [TYPE]
#   metric PORT SPEC       a counter from a server's prometheus endpoint
#   cpu_ticks, busy_ticks, rss, snapshot: what /proc says of a process or core
#   dnsperf_to S ARGS...   dnsperf on CLIENT_CPU against server S
#   saturate S REP         one saturating dnsperf run, a line in RESULTS,
#                          with COUNTERS per query
#   latency S REP          one fixed-rate dnsperf run, a line in LATENCY
#   interleave S...        warm-up, then REPS ABBA repetitions of both
#   median, col, sum, max  to summarise RESULTS and LATENCY
#   describe_machine       the machine and versions, as markdown lines
#
# Everything listens on, and sends only to, 127.0.0.1 (and the demo world's
# own namespace and veth pair).

DURATION=${DURATION:-10}
REPS=${REPS:-3}
OUTSTANDING=${OUTSTANDING:-100}
LAT_QPS=${LAT_QPS:-5000}
LAT_DURATION=${LAT_DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HZ=$(getconf CLK_TCK)
PIDS=()
declare -A PID=() PORT=() MPORT=() QFILE=() BODY=()

fail() {
	echo "$SCRIPT: $*" >&2
	exit 1
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}

bench_init() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null ||
			{ echo "$SCRIPT: $tool not found (apt-get install dnsperf dnsutils util-linux curl iproute2)" >&2; exit 2; }
	done
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/$SCRIPT.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	RESULTS=$TMP/results # server rep qps avg_s max_s lost noerror% cpu_us/query server_core% others_on_server_core% client_core% counters/query...
	LATENCY=$TMP/latency # server rep p50 p99 p99.9 max (ms) lost
	: >"$RESULTS"
	: >"$LATENCY"
}

build_coredns() {
	if [[ $# -gt 0 ]]; then
		COREDNS=$(realpath "$1")
	else
		make -C "$ROOT" --no-print-directory build >&2
		COREDNS=$ROOT/bin/coredns
	fi
	[[ -x $COREDNS ]] || fail "$COREDNS is not executable"
}

build_demo() {
	if [[ -z ${DEMO:-} ]]; then
		(cd "$ROOT" && go build -o bin/demo ./cmd/demo) >&2
		DEMO=$ROOT/bin/demo
	fi
	[[ -x $DEMO ]] || fail "$DEMO is not executable"
}

# free_port prints a port free on 127.0.0.1 for TCP and UDP, not handed out
# before by this script. Another process may still take it; wait_answer
# then fails.
declare -A TAKEN=()
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		[[ -z ${TAKEN[$p]:-} ]] || continue
		if [[ -z $(ss -Htuln "sport = :$p") ]]; then
			TAKEN[$p]=1
			echo "$p"
			return
		fi
	done
	fail "no free port"
}

# start NAME COREFILE_TEXT CPU: runs coredns pinned to CPU, in TMP, and
# records its pid in PID[NAME].
start() {
	local name=$1 corefile=$2 cpu=$3
	printf '%s' "$corefile" >"$TMP/$name.Corefile"
	(cd "$TMP" && exec taskset -c "$cpu" "$COREDNS" -conf "$name.Corefile" -quiet) >"$TMP/$name.log" 2>&1 &
	PIDS+=("$!")
	PID[$name]=$!
}

# stop NAME: stops a process started with start, and waits for it.
stop() {
	kill "${PID[$1]}" 2>/dev/null || true
	wait "${PID[$1]}" 2>/dev/null || true
}

# start_servers CPU SERVER...: starts each server with its plugins BODY[S] in
# an example.org block on PORT[S], and a prometheus block on MPORT[S]
# outside the measured block (it only exports the process's counters).
start_servers() {
	local cpu=$1 s metricsdns
	shift
	for s in "$@"; do
		PORT[$s]=$(free_port)
		metricsdns=$(free_port)
		MPORT[$s]=$(free_port)
		start "$s" "example.org:${PORT[$s]} {
    bind 127.0.0.1
    ${BODY[$s]}
}
metrics.invalid:$metricsdns {
    bind 127.0.0.1
    prometheus 127.0.0.1:${MPORT[$s]}
}
" "$cpu"
	done
}

# start_authority ZONE_TEXT: the public authority for example.org, on
# CLIENT_CPU, as PORT[auth]; sets AUTH to its address.
start_authority() {
	printf '%s' "$1" >"$TMP/db.example.org"
	PORT[auth]=$(free_port)
	AUTH=127.0.0.1:${PORT[auth]}
	start auth "example.org:${PORT[auth]} {
    bind 127.0.0.1
    file db.example.org
}
" "$CLIENT_CPU"
}

# PUBLIC_EXTRA are public-only names, added by start_world to the demo's
# public zone (cmd/demo/world/corefile.go) to make PUBLIC_ZONE.
PUBLIC_EXTRA='blog       60 IN A   203.0.113.11
shop       60 IN A   203.0.113.12
mail       60 IN A   203.0.113.13
'

# device_body SOCKET IFACE: the device deployment (docs/corefiles/
# device.Corefile) with mdns for the demo LAN after tailnet; AUTH is the
# public stand-in.
device_body() {
	echo "cache 30
    fallback {
        to $AUTH
        max_ttl 10
        policy registry tailnet lan
    }
    tailnet {
        socket $1
        alias registry hub
        fallthrough
    }
    mdns {
        interface $2
        fallthrough
    }"
}

# start_world runs the demo world (cmd/demo/world) pinned to CLIENT_CPU, with
# its control endpoint on WORLD_CONTROL, and waits for it: it sets
# WORLD_SOCKET, WORLD_LAN (the LAN's interface on this side) and
# NODE_V4[name] and NODE_V6[name]. Stopping it (SIGTERM, on exit) leaves
# nothing behind.
declare -A NODE_V4=() NODE_V6=()
start_world() {
	build_demo
	WORLD_CONTROL=127.0.0.1:$(free_port)
	taskset -c "$CLIENT_CPU" "$DEMO" -world-only -control "$WORLD_CONTROL" -metrics "" >"$TMP/world.out" 2>"$TMP/world.log" &
	PIDS+=("$!")
	PID[world]=$!
	for _ in $(seq 600); do
		grep -q '^ready$' "$TMP/world.out" && break
		kill -0 "${PID[world]}" 2>/dev/null || { cat "$TMP/world.out" "$TMP/world.log" >&2; fail "the demo world exited"; }
		sleep 0.2
	done
	grep -q '^ready$' "$TMP/world.out" || { cat "$TMP/world.log" >&2; fail "the demo world did not come up in 120 s"; }
	WORLD_SOCKET=$(sed -n 's/^socket=//p' "$TMP/world.out")
	WORLD_LAN=$(sed -n 's/^lan_interface=//p' "$TMP/world.out")
	PUBLIC_ZONE="$(cat "$(sed -n 's/^public_zone=//p' "$TMP/world.out")")
$PUBLIC_EXTRA"
	[[ -n $WORLD_LAN ]] || fail "the demo world has no LAN (it needs root for the veth pair)"
	local name v4 v6 rest
	while read -r name v4 v6 rest; do
		NODE_V4[$name]=$v4 NODE_V6[$name]=$v6
	done < <(sed -n 's/^node=//p' "$TMP/world.out")
}

# node VERB NAME: takes a node of the demo world offline or back.
node() {
	curl -fsS -o /dev/null -X POST "http://$WORLD_CONTROL/nodes/$2/$1" || fail "could not take $2 $1"
}

# wait_answer NAME QNAME [WANT] [TYPE]: waits (10 s at most) until the
# server answers QNAME with NOERROR and, if WANT is given, WANT in its
# answer section.
wait_answer() {
	local name=$1 qname=$2 want=${3:-} type=${4:-A} out=
	for _ in $(seq 50); do
		if ! kill -0 "${PID[$name]}" 2>/dev/null; then
			cat "$TMP/$name.log" >&2
			fail "$name exited"
		fi
		out=$(dig +tries=1 +time=1 -p "${PORT[$name]}" @127.0.0.1 "$qname" "$type" 2>/dev/null || true)
		if grep -q 'status: NOERROR' <<<"$out" && { [[ -z $want ]] || grep -q "IN[[:space:]]*$type[[:space:]]*$want\$" <<<"$out"; }; then
			return
		fi
		sleep 0.2
	done
	echo "$out" >&2
	cat "$TMP/$name.log" >&2
	fail "$name did not answer $qname $type${want:+ with $want} on port ${PORT[$name]}"
}

# metric PORT SPEC: the sum of a counter over its label sets; SPEC is NAME,
# or NAME{TEXT} for the label sets whose text holds TEXT.
metric() {
	curl -fsS "http://127.0.0.1:$1/metrics" | awk -v spec="$2" '
		BEGIN { m = spec; sub(/\{.*/, "", m); f = ""; if (spec ~ /\{/) { f = spec; sub(/^[^{]*\{/, "", f); sub(/\}$/, "", f) } }
		index($0, m) == 1 && (substr($0, length(m) + 1, 1) == "{" || substr($0, length(m) + 1, 1) == " ") && (f == "" || index($0, f)) { s += $NF }
		END { printf "%.0f\n", s }'
}

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# busy_ticks CPU: non-idle ticks of one core, from /proc/stat.
busy_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# rss PID: VmRSS and VmHWM of a process, in KiB.
rss() { awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } END { print r, h }' "/proc/$1/status"; }

# COUNTERS are the metrics (metric SPECs) every run reports per query, after
# the fixed columns of RESULTS.
COUNTERS=()

# snapshot SERVER: the counters a run is measured by, as one line: server
# CPU ticks, busy ticks of the two cores, then each of COUNTERS.
snapshot() {
	local c line
	line="$(cpu_ticks "${PID[$1]}") $(busy_ticks "$SERVER_CPU") $(busy_ticks "$CLIENT_CPU")"
	for c in "${COUNTERS[@]}"; do
		line+=" $(metric "${MPORT[$1]}" "$c")"
	done
	echo "$line"
}

# dnsperf_to SERVER ARGS...: dnsperf on CLIENT_CPU against the server, with
# its query file (QFILE[SERVER], else TMP/queries).
dnsperf_to() {
	local s=$1
	shift
	taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "${QFILE[$s]:-$TMP/queries}" -c 1 -T 1 "$@"
}

# saturate SERVER REP: one saturating dnsperf run, one line in RESULTS.
saturate() {
	local s=$1 rep=$2 before after
	before=$(snapshot "$s")
	dnsperf_to "$s" -q "$OUTSTANDING" -l "$DURATION" >"$TMP/$s.$rep.dnsperf" 2>&1 ||
		{ cat "$TMP/$s.$rep.dnsperf" >&2; exit 1; }
	after=$(snapshot "$s")
	awk -v s="$s" -v rep="$rep" -v hz="$HZ" -v d="$DURATION" -v before="$before" -v after="$after" -v script="$SCRIPT" '
		/Queries completed:/ { done = $3 }
		/Queries lost:/ { lost = $3 }
		/Queries per second:/ { qps = $4 }
		/Average Latency/ { avg = $4; gsub(/[^0-9.]/, "", $8); max = $8 }
		/Response codes:/ { for (i = 3; i < NF; i++) if ($i == "NOERROR") { noerr = $(i + 2); gsub(/[()%,]/, "", noerr) } }
		END {
			if (done == 0) { print script ": " s ": no query completed" > "/dev/stderr"; exit 1 }
			n = split(before, b); split(after, a)
			server = 100 * (a[1] - b[1]) / hz / d
			printf "%s %d %.0f %.6f %.6f %d %s %.1f %.0f %.0f %.0f", s, rep, qps, avg, max, lost, noerr + 0,
				(a[1] - b[1]) / hz * 1e6 / done, server, 100 * (a[2] - b[2]) / hz / d - server, 100 * (a[3] - b[3]) / hz / d
			for (i = 4; i <= n; i++) printf " %.3f", (a[i] - b[i]) / done
			printf "\n"
		}' "$TMP/$s.$rep.dnsperf" >>"$RESULTS"
	tail -n1 "$RESULTS" | awk -v sc="$SERVER_CPU" -v cc="$CLIENT_CPU" '{
		printf "  %-17s rep %d: %6d qps  avg %.3f ms  max %5.1f ms  lost %d  NOERROR %s%%  %4.1f us CPU/query  core %d: server %3d%% others %2d%%  core %d %3d%%",
			$1, $2, $3, $4 * 1e3, $5 * 1e3, $6, $7, $8, sc, $9, $10, cc, $11
		if (NF > 11) { printf "  counters/query"; for (i = 12; i <= NF; i++) printf " %s", $i }
		printf "\n" }' >&2
}

# latency SERVER REP: a fixed-rate run with per-query latencies (-v), one
# line in LATENCY.
latency() {
	local s=$1 rep=$2
	dnsperf_to "$s" -q "$OUTSTANDING" -Q "$LAT_QPS" -l "$LAT_DURATION" -v >"$TMP/$s.$rep.lat" 2>&1 ||
		{ tail -n 20 "$TMP/$s.$rep.lat" >&2; exit 1; }
	awk '$1 == ">" && $NF ~ /^[0-9.]+$/ && $2 != "T" { print $NF }' "$TMP/$s.$rep.lat" | sort -g |
		awk -v s="$s" -v rep="$rep" -v lost="$(awk '/Queries lost:/ { print $3 }' "$TMP/$s.$rep.lat")" '
			{ v[NR] = $1 }
			function q(p) { i = int(p * NR); if (i < 1) i = 1; return v[i] * 1e3 }
			END { printf "%s %d %.3f %.3f %.3f %.3f %d\n", s, rep, q(0.5), q(0.99), q(0.999), v[NR] * 1e3, lost }' >>"$LATENCY"
}

# interleave SERVER...: a 2-second warm-up of each server, then REPS
# repetitions, each running every server once (saturate), in the list's
# order and then backwards (ABBA), so that drift and the server run just
# before do not favour one server; then the fixed-rate runs (latency) in
# the same order, unless LAT_QPS is 0.
interleave() {
	local s rep order
	echo "warming up (2 s each)" >&2
	for s in "$@"; do
		dnsperf_to "$s" -q "$OUTSTANDING" -l 2 >/dev/null 2>&1
	done
	for rep in $(seq "$REPS"); do
		echo "repetition $rep/$REPS" >&2
		order=()
		for s in "$@"; do
			if ((rep % 2)); then order+=("$s"); else order=("$s" "${order[@]}"); fi
		done
		for s in "${order[@]}"; do saturate "$s" "$rep"; done
		if [[ $LAT_QPS -gt 0 ]]; then
			for s in "${order[@]}"; do latency "$s" "$rep"; done
		fi
	done
}

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# col SERVER COLUMN FILE: that column of the server's lines.
col() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$3"; }

# sum, max of the numbers on stdin
sum() { awk '{ t += $1 } END { print t + 0 }'; }
max() { sort -g | tail -n1; }

# describe_machine: the machine, the versions and the load, as markdown
# lines; LOAD_BEFORE is the load average when the script began.
describe_machine() {
	echo "Machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r);" \
		"$("$COREDNS" -version | head -n1), $(go version 2>/dev/null | awk '{ print $3 }'), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')."
	echo "Servers under test on core $SERVER_CPU (\`taskset\`, so GOMAXPROCS is 1), dnsperf and the rest on core $CLIENT_CPU." \
		"Load average before and after: $LOAD_BEFORE; $(cut -d' ' -f1-3 /proc/loadavg)."
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
