#!/usr/bin/env bash
# fallback.sh measures what the fallback path costs next to stock CoreDNS
# (cache + forward), with dnsperf, all servers in one run so that the
# figures are comparable. docs/benchmarks.md ("## fallback") keeps the
# latest results.
#
# Usage: test/bench/fallback.sh [COREDNS_BINARY]
#
# Without a binary it runs `make build` and uses bin/coredns. Knobs, from
# the environment (defaults in brackets):
#   DURATION      seconds of each saturating dnsperf run [10]
#   REPS          interleaved repetitions [3]
#   OUTSTANDING   dnsperf -q, queries in flight [100]
#   LAT_QPS       rate of the fixed-rate latency runs, 0 skips them [5000]
#   LAT_DURATION  seconds of each latency run [5]
#   SERVER_CPU    core for the servers under test [0]
#   CLIENT_CPU    core for dnsperf and the authority [1]
#
# Everything listens on, and sends only to, 127.0.0.1; every process this
# script starts is stopped on exit, and its temporary directory removed.
set -euo pipefail

DURATION=${DURATION:-10}
REPS=${REPS:-3}
OUTSTANDING=${OUTSTANDING:-100}
LAT_QPS=${LAT_QPS:-5000}
LAT_DURATION=${LAT_DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ANSWER=198.51.100.7 # the wildcard's address
UNIQUE=10000        # distinct names in the query file
QUERIES=100000      # lines in the query file

for tool in dnsperf dig taskset curl ss; do
	command -v "$tool" >/dev/null || { echo "fallback.sh: $tool not found (apt-get install dnsperf dnsutils util-linux curl iproute2)" >&2; exit 2; }
done

if [[ $# -gt 0 ]]; then
	COREDNS=$(realpath "$1")
else
	make -C "$ROOT" --no-print-directory build >&2
	COREDNS=$ROOT/bin/coredns
fi
[[ -x $COREDNS ]] || { echo "fallback.sh: $COREDNS is not executable" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fallback-bench.XXXXXX")
PIDS=()
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
trap cleanup EXIT
trap 'exit 130' INT TERM

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
	echo "fallback.sh: no free port" >&2
	exit 1
}

# start NAME COREFILE_TEXT CPU: runs coredns pinned to CPU and records its
# pid in PID[NAME].
declare -A PID=() PORT=() MPORT=()
start() {
	local name=$1 corefile=$2 cpu=$3
	printf '%s' "$corefile" >"$TMP/$name.Corefile"
	(cd "$TMP" && exec taskset -c "$cpu" "$COREDNS" -conf "$name.Corefile" -quiet) >"$TMP/$name.log" 2>&1 &
	PIDS+=("$!")
	PID[$name]=$!
}

# wait_answer NAME WANT: waits until the server answers probe.example.org
# with WANT in its answer (any NOERROR answer when WANT is empty).
wait_answer() {
	local name=$1 want=$2 out
	for _ in $(seq 50); do
		if ! kill -0 "${PID[$name]}" 2>/dev/null; then
			echo "fallback.sh: $name exited:" >&2
			cat "$TMP/$name.log" >&2
			exit 1
		fi
		out=$(dig +tries=1 +time=1 -p "${PORT[$name]}" @127.0.0.1 probe.example.org A 2>/dev/null || true)
		if grep -q 'status: NOERROR' <<<"$out" && { [[ -z $want ]] || grep -q "IN[[:space:]]*A[[:space:]]*$want" <<<"$out"; }; then
			return
		fi
		sleep 0.2
	done
	echo "fallback.sh: $name did not answer probe.example.org on port ${PORT[$name]}:" >&2
	echo "$out" >&2
	cat "$TMP/$name.log" >&2
	exit 1
}

# The authority: the zone every forward and fallback asks.
cat >"$TMP/db.example.org" <<EOF
\$ORIGIN example.org.
@   3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 60
@   3600 IN NS  ns.example.org.
ns  3600 IN A   127.0.0.1
*     60 IN A   $ANSWER
EOF
PORT[auth]=$(free_port)
AUTH=127.0.0.1:${PORT[auth]}
start auth "example.org:${PORT[auth]} {
    bind 127.0.0.1
    file db.example.org
}
" "$CLIENT_CPU"
wait_answer auth "$ANSWER"

# The servers under test, in the order they first run; BASE is the server
# each is compared with, BODY the plugins of its server block.
SERVERS=(forward fallback forward_nocache fallback_nocache whoami)
declare -A BASE=(
	[forward]=forward [fallback]=forward
	[forward_nocache]=forward_nocache [fallback_nocache]=forward_nocache
	[whoami]=whoami
)
declare -A BODY=(
	[forward]="cache
    forward . $AUTH"
	[fallback]="cache
    fallback {
        to $AUTH
    }
    tailnet {
        socket /nonexistent/tailscaled.sock
        fallthrough
    }"
	[forward_nocache]="forward . $AUTH"
	[fallback_nocache]="fallback {
        to $AUTH
    }
    tailnet {
        socket /nonexistent/tailscaled.sock
        fallthrough
    }"
	[whoami]="whoami"
)
for s in "${SERVERS[@]}"; do
	PORT[$s]=$(free_port)
	metricsdns=$(free_port)
	MPORT[$s]=$(free_port)
	# The prometheus block only exports the process's counters (cache hits,
	# upstream queries, fallback reasons); it is not in the measured block.
	start "$s" "example.org:${PORT[$s]} {
    bind 127.0.0.1
    ${BODY[$s]}
}
metrics.invalid:$metricsdns {
    bind 127.0.0.1
    prometheus 127.0.0.1:${MPORT[$s]}
}
" "$SERVER_CPU"
done
for s in "${SERVERS[@]}"; do
	if [[ $s == whoami ]]; then wait_answer "$s" ""; else wait_answer "$s" "$ANSWER"; fi
done

# The query file: UNIQUE names, QUERIES lines. Nine lines in ten ask one of
# 1,000 hot names (host0000..host0999), the tenth one of the other 9,000
# in turn, so a cached server mostly hits; dnsperf loops over the file.
awk -v n="$QUERIES" -v u="$UNIQUE" 'BEGIN {
	hot = u / 10; cold = 0
	for (i = 0; i < n; i++) {
		if (i % 10 == 9) { h = hot + cold; cold = (cold + 1) % (u - hot) } else { h = i % hot }
		printf "host%04d.example.org A\n", h
	}
}' >"$TMP/queries"

# metric PORT NAME: the sum of a counter over its label sets.
metric() {
	curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '
		index($0, m) == 1 && (substr($0, length(m) + 1, 1) == "{" || substr($0, length(m) + 1, 1) == " ") { s += $NF }
		END { printf "%.0f\n", s }'
}

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# busy_ticks CPU: non-idle ticks of one core, from /proc/stat.
busy_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

HZ=$(getconf CLK_TCK)
RESULTS=$TMP/results # server rep qps avg_s max_s lost noerror% cpu_us/query server_core% others_on_server_core% client_core% upstream/query fallback/query
: >"$RESULTS"

# snapshot SERVER: the counters a run is measured by, as one line: server
# CPU ticks, busy ticks of the two cores, upstream queries, fallback queries.
snapshot() {
	echo "$(cpu_ticks "${PID[$1]}") $(busy_ticks "$SERVER_CPU") $(busy_ticks "$CLIENT_CPU")" \
		"$(metric "${MPORT[$1]}" coredns_proxy_request_duration_seconds_count)" \
		"$(metric "${MPORT[$1]}" coredns_fallback_requests_total)"
}

# run SERVER REP: one saturating dnsperf run, one line in RESULTS.
run() {
	local s=$1 rep=$2 before after
	before=$(snapshot "$s")
	taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$TMP/queries" \
		-c 1 -T 1 -q "$OUTSTANDING" -l "$DURATION" >"$TMP/$s.$rep.dnsperf" 2>&1 ||
		{ cat "$TMP/$s.$rep.dnsperf" >&2; exit 1; }
	after=$(snapshot "$s")
	awk -v s="$s" -v rep="$rep" -v hz="$HZ" -v d="$DURATION" -v before="$before" -v after="$after" '
		/Queries completed:/ { done = $3 }
		/Queries lost:/ { lost = $3 }
		/Queries per second:/ { qps = $4 }
		/Average Latency/ { avg = $4; gsub(/[^0-9.]/, "", $8); max = $8 }
		/Response codes:/ { for (i = 3; i < NF; i++) if ($i == "NOERROR") { noerr = $(i + 2); gsub(/[()%,]/, "", noerr) } }
		END {
			if (done == 0) { print "fallback.sh: " s ": no query completed" > "/dev/stderr"; exit 1 }
			split(before, b); split(after, a)
			server = 100 * (a[1] - b[1]) / hz / d
			printf "%s %d %.0f %.6f %.6f %d %s %.1f %.0f %.0f %.0f %.3f %.3f\n", s, rep, qps, avg, max, lost, noerr + 0,
				(a[1] - b[1]) / hz * 1e6 / done, server, 100 * (a[2] - b[2]) / hz / d - server, 100 * (a[3] - b[3]) / hz / d,
				(a[4] - b[4]) / done, (a[5] - b[5]) / done
		}' "$TMP/$s.$rep.dnsperf" >>"$RESULTS"
	tail -n1 "$RESULTS" | awk -v sc="$SERVER_CPU" -v cc="$CLIENT_CPU" '{
		printf "  %-17s rep %d: %6d qps  avg %.3f ms  max %5.1f ms  lost %d  NOERROR %s%%  %4.1f us CPU/query  core %d: server %3d%% others %2d%%  core %d %3d%%  upstream %.3f/query\n",
			$1, $2, $3, $4 * 1e3, $5 * 1e3, $6, $7, $8, sc, $9, $10, cc, $11, $12 }' >&2
}

# latency SERVER REP: a fixed-rate run with per-query latencies (-v).
LATENCY=$TMP/latency # server rep p50 p99 p99.9 max (ms) lost
: >"$LATENCY"
latency() {
	local s=$1 rep=$2
	taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$TMP/queries" \
		-c 1 -T 1 -q "$OUTSTANDING" -Q "$LAT_QPS" -l "$LAT_DURATION" -v >"$TMP/$s.$rep.lat" 2>&1 ||
		{ tail -n 20 "$TMP/$s.$rep.lat" >&2; exit 1; }
	awk '$1 == ">" && $NF ~ /^[0-9.]+$/ && $2 != "T" { print $NF }' "$TMP/$s.$rep.lat" | sort -g |
		awk -v s="$s" -v rep="$rep" -v lost="$(awk '/Queries lost:/ { print $3 }' "$TMP/$s.$rep.lat")" '
			{ v[NR] = $1 }
			function q(p) { i = int(p * NR); if (i < 1) i = 1; return v[i] * 1e3 }
			END { printf "%s %d %.3f %.3f %.3f %.3f %d\n", s, rep, q(0.5), q(0.99), q(0.999), v[NR] * 1e3, lost }' >>"$LATENCY"
}

echo "coredns: $("$COREDNS" -version | head -n1)" >&2
echo "dnsperf: $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }'); servers on core $SERVER_CPU, dnsperf and the authority on core $CLIENT_CPU" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "warming up (2 s each)" >&2
for s in "${SERVERS[@]}"; do
	taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$TMP/queries" -c 1 -T 1 -q "$OUTSTANDING" -l 2 >/dev/null 2>&1
done
# Each repetition runs every server once, in the list's order and then
# backwards (ABBA), so that drift and the server run just before do not
# favour one server.
for rep in $(seq "$REPS"); do
	echo "repetition $rep/$REPS" >&2
	order=()
	for s in "${SERVERS[@]}"; do
		if ((rep % 2)); then order+=("$s"); else order=("$s" "${order[@]}"); fi
	done
	for s in "${order[@]}"; do run "$s" "$rep"; done
	if [[ $LAT_QPS -gt 0 ]]; then
		for s in "${order[@]}"; do latency "$s" "$rep"; done
	fi
done

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$3"; }

declare -A QPS=() CPU=()
for s in "${SERVERS[@]}"; do
	QPS[$s]=$(col "$s" 3 "$RESULTS" | median)
	CPU[$s]=$(col "$s" 8 "$RESULTS" | median)
done

echo
echo "Load average before and after: $LOAD_BEFORE; $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "Saturating runs: dnsperf -c 1 -T 1 -q $OUTSTANDING -l $DURATION, $REPS interleaved repetitions (order reversed every other one); medians, except max latency (the worst run) and lost (all runs)."
echo
echo "| server | QPS | QPS range | vs base | vs whoami | avg latency ms | max latency ms | lost | CPU µs/query | CPU vs base | upstream queries/query | core $SERVER_CPU: server / others | core $CLIENT_CPU busy |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in "${SERVERS[@]}"; do
	b=${BASE[$s]}
	awk -v s="$s" -v b="$b" -v q="${QPS[$s]}" -v qb="${QPS[$b]}" -v qw="${QPS[whoami]}" \
		-v c="${CPU[$s]}" -v cb="${CPU[$b]}" \
		-v lo="$(col "$s" 3 "$RESULTS" | sort -g | head -n1)" -v hi="$(col "$s" 3 "$RESULTS" | sort -g | tail -n1)" \
		-v avg="$(col "$s" 4 "$RESULTS" | median)" -v max="$(col "$s" 5 "$RESULTS" | sort -g | tail -n1)" \
		-v lost="$(col "$s" 6 "$RESULTS" | awk '{ t += $1 } END { print t + 0 }')" \
		-v up="$(col "$s" 12 "$RESULTS" | median)" -v sv="$(col "$s" 9 "$RESULTS" | median)" \
		-v ot="$(col "$s" 10 "$RESULTS" | median)" -v c1="$(col "$s" 11 "$RESULTS" | median)" '
		BEGIN {
			base = (s == b) ? "-" : sprintf("%.2f (%s)", q / qb, b)
			cbase = (s == b) ? "-" : sprintf("%.2f", c / cb)
			printf "| %s | %d | %d–%d | %s | %.2f | %.3f | %.1f | %d | %.1f | %s | %.3f | %d%% / %d%% | %d%% |\n",
				s, q, lo, hi, base, q / qw, avg * 1e3, max * 1e3, lost, c, cbase, up, sv, ot, c1
		}'
done

if [[ $LAT_QPS -gt 0 ]]; then
	echo
	echo "Fixed-rate runs: dnsperf -Q $LAT_QPS -l $LAT_DURATION -v, latency of every answer; medians of $REPS repetitions, except max (the worst run) and lost (all runs)."
	echo
	echo "| server | p50 ms | p99 ms | p99.9 ms | max ms | lost |"
	echo "|---|---:|---:|---:|---:|---:|"
	for s in "${SERVERS[@]}"; do
		printf '| %s | %.3f | %.3f | %.3f | %.3f | %d |\n' "$s" \
			"$(col "$s" 3 "$LATENCY" | median)" "$(col "$s" 4 "$LATENCY" | median)" \
			"$(col "$s" 5 "$LATENCY" | median)" "$(col "$s" 6 "$LATENCY" | sort -g | tail -n1)" \
			"$(col "$s" 7 "$LATENCY" | awk '{ t += $1 } END { print t + 0 }')"
	done
fi

# Every fallback query must have taken the fallback path, and every answer
# been NOERROR; say so loudly otherwise.
for s in fallback fallback_nocache; do
	reasons=$(curl -fsS "http://127.0.0.1:${MPORT[$s]}/metrics" | awk '/^coredns_fallback_requests_total\{/ { print }')
	grep -q 'reason="fell_off"' <<<"$reasons" || echo "WARNING: $s: no query took the fallback path: $reasons" >&2
	if grep -v 'reason="fell_off"' <<<"$reasons" | grep -q .; then echo "WARNING: $s: other reasons: $reasons" >&2; fi
done
awk '$7 != 100 { printf "WARNING: %s rep %d: only %s%% NOERROR\n", $1, $2, $7 }
	$1 ~ /^fallback/ && ($12 - $13 > 0.001 || $13 - $12 > 0.001) {
		printf "WARNING: %s rep %d: %.3f upstream queries per query, but %.3f through fallback\n", $1, $2, $12, $13
	}' "$RESULTS" >&2
