#!/usr/bin/env bash
# plugins.sh measures tailhorizon's answers next to stock CoreDNS plugins
# that users glue together today, with dnsperf, all in one run against the
# demo world (cmd/demo/world: a real tailnet and an mDNS LAN, in a network
# namespace of their own): throughput, CPU per query and latency of each
# path as ratios to whoami; failover time (a peer goes offline, then the
# first public answer); and the memory of the device server under a flood
# of unique names. docs/benchmarks.md ("## Plugins side by side") keeps the
# latest results; it prints them as markdown on stdout (progress on stderr)
# and draws PLOT.
#
# Usage: test/bench/plugins.sh [COREDNS_BINARY]
#
# Without a binary it runs `make build` and uses bin/coredns; it builds
# bin/demo unless DEMO names one. It needs root (the demo LAN is a veth
# pair). Knobs, from the environment (defaults in brackets):
#   DURATION          seconds of each saturating dnsperf run [10]
#   REPS              interleaved repetitions [3]
#   OUTSTANDING       dnsperf -q, queries in flight [100]
#   LAT_QPS           rate of the fixed-rate latency runs, 0 skips them [5000]
#   LAT_DURATION      seconds of each latency run [5]
#   SERVER_CPU        core for the servers under test [0]
#   CLIENT_CPU        core for dnsperf, the authority and the world [1]
#   FAILOVER_TRIALS   offline/online trials, 0 skips them [20]
#   FAILOVER_BOUND    seconds a trial may wait for the answer to change [30]
#   FLOOD_NAMES       unique names of the flood, 0 skips it [1000000]
#   FLOOD_OUTSTANDING dnsperf -q of the flood [300]
#   FLOOD_MAX         seconds the flood may take [600]
#   PLOT              the PNG to draw (needs gnuplot) [bin/bench-plugins.png]
#
# Everything listens on, and sends only to, 127.0.0.1 and the demo world's
# namespace; every process this script starts is stopped on exit, and its
# temporary directory removed.
set -euo pipefail

SCRIPT=plugins.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FAILOVER_TRIALS=${FAILOVER_TRIALS:-20}
FAILOVER_BOUND=${FAILOVER_BOUND:-30}
FLOOD_NAMES=${FLOOD_NAMES:-1000000}
FLOOD_OUTSTANDING=${FLOOD_OUTSTANDING:-300}
FLOOD_MAX=${FLOOD_MAX:-600}
PLOT=${PLOT:-$ROOT/bin/bench-plugins.png}
PUBLIC=203.0.113.10 # hub's and www's public address
LAN_NAS=198.18.1.2  # nas.local on the demo LAN

bench_init dnsperf dig taskset curl ss go
[[ $(id -u) == 0 ]] || fail "needs root: the demo world's mDNS LAN is a veth pair"
build_coredns "$@"
(cd "$ROOT" && go build -o "$TMP/failover" ./test/bench/failover) >&2

echo "starting the demo world" >&2
start_world
start_authority "$PUBLIC_ZONE"
wait_answer auth www.example.org "$PUBLIC"

# The hosts file has the names the tailnet has, with the same addresses.
for n in "${!NODE_V4[@]}"; do
	echo "${NODE_V4[$n]} $n.example.org"
done >"$TMP/hosts"

# The servers under test, in the order they first run; BODY is the plugins
# of a server's block, QFILE its queries, WHAT what answers them.
SERVERS=(whoami hosts template tailnet mdns fallback)
BODY=(
	[whoami]="whoami"
	[hosts]="hosts hosts"
	[template]='template IN A example.org {
        match "^(?P<host>[^.]+)\.example\.org\.$"
        answer "{{ .Name }} 60 IN A '"${NODE_V4[hub]}"'"
    }'
	[tailnet]="tailnet {
        socket $WORLD_SOCKET
    }"
	[mdns]="mdns {
        interface $WORLD_LAN
    }"
	[fallback]="fallback {
        to $AUTH
    }
    tailnet {
        socket $WORLD_SOCKET
    }"
	# For the failover trials: the device chain without cache (so that
	# what is measured is the plugins, not a TTL), without and with mdns.
	[failover]="fallback {
        to $AUTH
    }
    tailnet {
        socket $WORLD_SOCKET
        fallthrough
    }"
	[failover_mdns]="fallback {
        to $AUTH
    }
    tailnet {
        socket $WORLD_SOCKET
        fallthrough
    }
    mdns {
        interface $WORLD_LAN
        fallthrough
    }"
	# For the flood: the device server, as test/load.sh runs it.
	[device]=$(device_body "$WORLD_SOCKET" "$WORLD_LAN")
)
declare -A WHAT=(
	[whoami]="whoami: the client's address"
	[hosts]="hosts: a file with the tailnet's names"
	[template]="template: a regex, one address"
	[tailnet]="tailnet: the peer's address"
	[mdns]="mdns: nas.local from its cache"
	[fallback]="fallback: tailnet's NXDOMAIN, then the public authority"
)
printf '%s.example.org A\n' "${!NODE_V4[@]}" | sort >"$TMP/queries"
echo "nas.example.org A" >"$TMP/queries.mdns"
printf '%s.example.org A\n' www blog shop mail >"$TMP/queries.public"
QFILE=([mdns]=$TMP/queries.mdns [fallback]=$TMP/queries.public)
FAILOVER=(failover failover_mdns)

# The world's mDNS responder (hashicorp/mdns) answers every question by
# unicast to the asker's port 5353, which the kernel gives to one of the
# sockets bound there: so only one process with mdns runs at a time, each
# phase of this script stopping the one before.
start_servers "$SERVER_CPU" "${SERVERS[@]}"
wait_answer whoami hub.example.org
for s in hosts template tailnet; do
	wait_answer "$s" hub.example.org "${NODE_V4[hub]}"
done
wait_answer mdns nas.example.org "$LAN_NAS"
wait_answer fallback www.example.org "$PUBLIC"

# Per query: answers of tailnet, of mdns (from its cache), and queries sent
# on by fallback after an NXDOMAIN; each path's server must show 1.000.
COUNTERS=('coredns_tailnet_requests_total{result="answer"}' 'coredns_mdns_requests_total{result="answer"}'
	'coredns_fallback_requests_total{reason="nxdomain"}')

echo "coredns: $("$COREDNS" -version | head -n1); dnsperf: $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')" >&2
interleave "${SERVERS[@]}"

# Failover: each trial takes hub offline and measures, on both failover
# servers at once, the time from the node's stop (the control endpoint's
# reply) to the first public answer; then takes it back and measures the
# time to the first tailnet answer again.
FAILED=0
stop mdns
if ((FAILOVER_TRIALS > 0)); then
	start_servers "$SERVER_CPU" "${FAILOVER[@]}"
	for s in "${FAILOVER[@]}"; do
		wait_answer "$s" hub.example.org "${NODE_V4[hub]}"
	done
fi
TRIALS=$TMP/trials # server trial offline_ms online_ms post_offline_ms post_online_ms
: >"$TRIALS"
# trial VERB WANT: one event, its "post MS" and "SERVER MS" lines in
# TMP/VERB.
trial() {
	local rc=0
	"$TMP/failover" -post "http://$WORLD_CONTROL/nodes/hub/$1" -name hub.example.org -want "$2" \
		-bound "${FAILOVER_BOUND}s" "127.0.0.1:${PORT[failover]}" "127.0.0.1:${PORT[failover_mdns]}" >"$TMP/$1" || rc=$?
	((rc != 2)) || fail "failover trial: hub $1: $(cat "$TMP/$1")"
	((rc == 0)) || FAILED=1
}
# field VERB KEY: the milliseconds of KEY ("post" or a server) in TMP/VERB.
field() { awk -v k="$2" '$1 == k { print $2 }' "$TMP/$1"; }
for t in $(seq "$FAILOVER_TRIALS"); do
	trial offline "$PUBLIC"
	trial online "${NODE_V4[hub]}"
	for s in "${FAILOVER[@]}"; do
		echo "$s $t $(field offline "127.0.0.1:${PORT[$s]}") $(field online "127.0.0.1:${PORT[$s]}")" \
			"$(field offline post) $(field online post)" >>"$TRIALS"
	done
	tail -n 2 "$TRIALS" | awk '{ printf "  failover trial %2d %-13s offline -> public %8s ms   online -> tailnet %8s ms   (node stop %s ms, start %s ms)\n", $2, $1, $3, $4, $5, $6 }' >&2
	sleep 1 # let the other nodes see hub back
done

# The flood: FLOOD_NAMES unique random labels under the zone, once each,
# at the device server, after a warm-up with the names it knows.
if ((FLOOD_NAMES > 0)); then
	echo "flood: $FLOOD_NAMES unique names" >&2
	((FAILOVER_TRIALS == 0)) || stop failover_mdns
	start_servers "$SERVER_CPU" device
	wait_answer device hub.example.org "${NODE_V4[hub]}"
	wait_answer device www.example.org "$PUBLIC"
	awk -v n="$FLOOD_NAMES" 'BEGIN {
		srand(1); split("abcdefghijklmnopqrstuvwxyz0123456789", c, "")
		for (i = 0; i < n; i++) {
			l = ""; for (j = 0; j < 10; j++) l = l c[1 + int(rand() * 36)]
			printf "%s%x.example.org A\n", l, i
		}
	}' >"$TMP/queries.flood"
	cat "$TMP/queries" "$TMP/queries.public" >"$TMP/queries.warm"
	QFILE[device]=$TMP/queries.warm
	dnsperf_to device -q "$OUTSTANDING" -l 5 >/dev/null 2>&1
	read -r RSS0 HWM0 < <(rss "${PID[device]}")
	# mdns: names it asked the LAN for, and names passed on at once because
	# 256 lookups were in flight.
	MDNS_SPECS=('coredns_mdns_requests_total{result="fallthrough"}' 'coredns_mdns_requests_total{result="busy_fallthrough"}')
	mdns0=$(for m in "${MDNS_SPECS[@]}"; do metric "${MPORT[device]}" "$m"; done)
	QFILE[device]=$TMP/queries.flood
	(
		for i in $(seq $((FLOOD_MAX + 10))); do
			echo "$i $(rss "${PID[device]}")"
			sleep 1
		done
	) >"$TMP/flood.rss" &
	PIDS+=("$!")
	sampler=$!
	dnsperf_to device -q "$FLOOD_OUTSTANDING" -n 1 -l "$FLOOD_MAX" >"$TMP/flood.dnsperf" 2>&1 ||
		{ cat "$TMP/flood.dnsperf" >&2; exit 1; }
	sleep 1
	kill "$sampler"
	read -r RSS1 HWM1 < <(rss "${PID[device]}")
	mdns1=$(for m in "${MDNS_SPECS[@]}"; do metric "${MPORT[device]}" "$m"; done)
	read -r asked busy < <(paste <(echo "$mdns1") <(echo "$mdns0") | awk '{ printf "%d ", $1 - $2 } END { print "" }')
	grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Run time' "$TMP/flood.dnsperf" | sed 's/^ */  /' >&2
fi

# ---- the report ----
echo
describe_machine
echo
echo "### Throughput, CPU and latency"
echo
echo "Saturating runs: dnsperf -c 1 -T 1 -q $OUTSTANDING -l $DURATION, $REPS interleaved repetitions (order reversed every other one);" \
	"fixed-rate runs: -Q $LAT_QPS -l $LAT_DURATION -v, latency of every answer. Medians of the repetitions; lost is the sum of all runs."
echo
echo "| server | what answers | QPS | QPS range | vs whoami | CPU µs/query | vs whoami | p50 ms | vs whoami | p99 ms | vs whoami | lost | core $SERVER_CPU: server / others |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
: >"$TMP/plot.qps"
for s in "${SERVERS[@]}"; do
	q=$(col "$s" 3 "$RESULTS" | median) c=$(col "$s" 8 "$RESULTS" | median)
	p50=$(col "$s" 3 "$LATENCY" | median) p99=$(col "$s" 4 "$LATENCY" | median)
	[[ $s != whoami ]] || { qw=$q cw=$c p50w=$p50 p99w=$p99; }
	awk -v s="$s" -v what="${WHAT[$s]#*: }" -v q="$q" -v qw="$qw" -v c="$c" -v cw="$cw" -v p50="${p50:-0}" -v p50w="${p50w:-0}" \
		-v p99="${p99:-0}" -v p99w="${p99w:-0}" -v lost="$( (col "$s" 6 "$RESULTS"; col "$s" 7 "$LATENCY") | sum)" \
		-v sv="$(col "$s" 9 "$RESULTS" | median)" -v ot="$(col "$s" 10 "$RESULTS" | median)" -v plot="$TMP/plot.qps" \
		-v lo="$(col "$s" 3 "$RESULTS" | sort -g | head -n1)" -v hi="$(col "$s" 3 "$RESULTS" | max)" '
		function r(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
		BEGIN {
			printf "| %s | %s | %d | %d–%d | %s | %.1f | %s | %.3f | %s | %.3f | %s | %d | %d%% / %d%% |\n",
				s, what, q, lo, hi, r(q, qw), c, r(c, cw), p50, r(p50, p50w), p99, r(p99, p99w), lost, sv, ot
			printf "%s %s %s\n", s, r(q, qw), r(c, cw) >> plot
		}'
done

if ((FAILOVER_TRIALS > 0)); then
	echo
	echo "### Failover"
	echo
	echo "$FAILOVER_TRIALS trials: hub goes offline (its tsnet node stops), then, from the control endpoint's reply, hub.example.org A" \
		"is asked (again 1 ms after each answer) until the answer is the public $PUBLIC; then hub comes back, and the same until the answer is" \
		"its tailnet address again. Both servers are measured in the same trials. Nearest-rank percentiles."
	echo
	echo "| server | change | median ms | p90 ms | max ms | timeouts (> ${FAILOVER_BOUND} s) |"
	echo "|---|---|---:|---:|---:|---:|"
	for s in "${FAILOVER[@]}"; do
		for c in 3:"offline → public" 4:"online → tailnet"; do
			col "$s" "${c%%:*}" "$TRIALS" | sort -g | awk -v s="$s" -v what="${c#*:}" '
				$1 == "timeout" { to++; next } { v[++n] = $1 }
				function q(p) { i = int(p * n + 0.999999); if (i < 1) i = 1; return v[i] }
				END { printf "| %s | %s | %.1f | %.1f | %.1f | %d |\n", s, what, q(0.5), q(0.9), v[n], to }'
		done
	done
	echo
	printf 'The control endpoint replied %.1f ms (median; max %.1f) after the request to stop the node, %.1f ms (max %.1f) after the request to start it again.\n' \
		"$(col failover 5 "$TRIALS" | median)" "$(col failover 5 "$TRIALS" | max)" "$(col failover 6 "$TRIALS" | median)" "$(col failover 6 "$TRIALS" | max)"
fi

if ((FLOOD_NAMES > 0)); then
	echo
	echo "### Memory under a flood of unique names"
	echo
	echo "The device server (\`cache 30\`, \`fallback\` with \`max_ttl 10\` and a policy, \`tailnet\` with an alias and" \
		"\`fallthrough\`, \`mdns\` on the demo LAN with \`fallthrough\`; the public stand-in in its own process) after a 5-second" \
		"warm-up with the names it knows, then $FLOOD_NAMES unique random names (\`RANDOM.example.org A\`), each once" \
		"(dnsperf -n 1 -q $FLOOD_OUTSTANDING). Each goes through the whole chain: tailnet has no such peer; mdns asks the LAN" \
		"and waits its 300 ms timeout ($asked names), or passes the name on at once while 256 lookups are in flight ($busy names);" \
		"fallback then asks the public authority, whose NXDOMAIN is the answer."
	echo
	echo "| VmRSS after warm-up | VmRSS max (1 s samples) | VmRSS after | VmHWM after | queries completed | lost | QPS | rcodes | cache entries | mdns entries |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
	awk -v r0="$RSS0" -v r1="$RSS1" -v h1="$HWM1" -v rmax="$(awk '{ print $2 }' "$TMP/flood.rss" | max)" \
		-v cache="$(metric "${MPORT[device]}" coredns_cache_entries)" -v md="$(metric "${MPORT[device]}" coredns_mdns_entries)" '
		/Queries completed:/ { done = $3 } /Queries lost:/ { lost = $3 } /Queries per second:/ { qps = $4 }
		/Response codes:/ { rc = $0; sub(/.*codes: */, "", rc) }
		END { printf "| %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %d | %d | %d | %s | %d | %d |\n",
			r0 / 1024, rmax / 1024, r1 / 1024, h1 / 1024, done, lost, qps, rc, cache, md }' "$TMP/flood.dnsperf"
	echo
	echo "VmRSS every 10 s of the flood (MiB): $(awk 'NR % 10 == 1 { printf "%s%.0f", sep, $2 / 1024; sep = " " }' "$TMP/flood.rss")."
fi

# The checks: every answer NOERROR, each path taken by every query of its
# server; say so loudly otherwise.
awk -v t=12 -v m=13 -v f=14 '
	$7 != 100 { printf "WARNING: %s rep %d: only %s%% NOERROR\n", $1, $2, $7; bad = 1 }
	($1 == "tailnet" && $t < 0.999) || ($1 == "mdns" && $m < 0.999) || ($1 == "fallback" && $f < 0.999) {
		printf "WARNING: %s rep %d: only %s, %s, %s of its queries answered by tailnet, mdns, fallback\n", $1, $2, $t, $m, $f; bad = 1
	}
	END { exit bad }' "$RESULTS" >&2 || FAILED=1
((FAILED == 0)) || { echo "$SCRIPT: some checks failed (see above)" >&2; }

# The plot: QPS and CPU per query as ratios to whoami, failover times per
# trial, and VmRSS during the flood.
if command -v gnuplot >/dev/null; then
	awk '$1 == "failover" { printf "%s %s", $2, $3 } $1 == "failover_mdns" { printf " %s\n", $3 }' "$TRIALS" | sed 's/timeout/NaN/g' >"$TMP/plot.failover"
	panels=1
	[[ -s $TMP/plot.failover ]] && panels=$((panels + 1))
	[[ -s $TMP/flood.rss ]] && panels=$((panels + 1))
	gnuplot <<EOF
set terminal pngcairo size $((480 * panels)),420 font "sans,10"
set output "$PLOT"
set multiplot layout 1,$panels title "tailhorizon next to stock CoreDNS ($(date +%F), $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
set title "dnsperf, server on one core: ratio to whoami"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics rotate by -30
set grid ytics
set key top left
plot "$TMP/plot.qps" using 2:xtic(1) title "QPS", "" using 3 title "CPU µs per query"
if ($([[ -s $TMP/plot.failover ]] && echo 1 || echo 0)) {
	set title "failover: hub offline → first public answer"
	set style data linespoints
	unset style histogram
	set xtics norotate 1,1
	set xlabel "trial"
	set ylabel "ms"
	set logscale y
	set yrange [*:*]
	plot "$TMP/plot.failover" using 1:2 title "fallback, tailnet" pt 7, "" using 1:3 title "fallback, tailnet, mdns" pt 5
	unset logscale y
}
if ($([[ -s $TMP/flood.rss ]] && echo 1 || echo 0)) {
	set title "device server: VmRSS under $FLOOD_NAMES unique names"
	set style data lines
	set xtics norotate autofreq
	set xlabel "seconds"
	set ylabel "MiB"
	set yrange [0:*]
	set key bottom right
	plot "$TMP/flood.rss" using 1:(\$2/1024) title "VmRSS" lw 2, "" using 1:(\$3/1024) title "VmHWM" dt 2
}
unset multiplot
EOF
	echo "plot: $PLOT" >&2
else
	echo "gnuplot not installed (apt-get install gnuplot-nox): no plot" >&2
fi
exit "$FAILED"
