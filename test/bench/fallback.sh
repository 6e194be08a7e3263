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
# It shares test/bench/lib.sh with plugins.sh and test/load.sh. Everything
# listens on, and sends only to, 127.0.0.1; every process this script
# starts is stopped on exit, and its temporary directory removed.
set -euo pipefail

SCRIPT=fallback.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ANSWER=198.51.100.7 # the wildcard's address
UNIQUE=10000        # distinct names in the query file
QUERIES=100000      # lines in the query file

bench_init dnsperf dig taskset curl ss
build_coredns "$@"

# The authority: the zone every forward and fallback asks.
start_authority "\$ORIGIN example.org.
@   3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 60
@   3600 IN NS  ns.example.org.
ns  3600 IN A   127.0.0.1
*     60 IN A   $ANSWER
"
wait_answer auth probe.example.org "$ANSWER"

# The servers under test, in the order they first run; BASE is the server
# each is compared with, BODY the plugins of its server block.
SERVERS=(forward fallback forward_nocache fallback_nocache whoami)
declare -A BASE=(
	[forward]=forward [fallback]=forward
	[forward_nocache]=forward_nocache [fallback_nocache]=forward_nocache
	[whoami]=whoami
)
BODY=(
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
start_servers "$SERVER_CPU" "${SERVERS[@]}"
for s in "${SERVERS[@]}"; do
	if [[ $s == whoami ]]; then wait_answer "$s" probe.example.org; else wait_answer "$s" probe.example.org "$ANSWER"; fi
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

# Per query: upstream queries, and queries through fallback.
COUNTERS=(coredns_proxy_request_duration_seconds_count coredns_fallback_requests_total)

echo "coredns: $("$COREDNS" -version | head -n1)" >&2
echo "dnsperf: $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }'); servers on core $SERVER_CPU, dnsperf and the authority on core $CLIENT_CPU" >&2
interleave "${SERVERS[@]}"

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
		-v lo="$(col "$s" 3 "$RESULTS" | sort -g | head -n1)" -v hi="$(col "$s" 3 "$RESULTS" | max)" \
		-v avg="$(col "$s" 4 "$RESULTS" | median)" -v max="$(col "$s" 5 "$RESULTS" | max)" \
		-v lost="$(col "$s" 6 "$RESULTS" | sum)" \
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
			"$(col "$s" 5 "$LATENCY" | median)" "$(col "$s" 6 "$LATENCY" | max)" \
			"$(col "$s" 7 "$LATENCY" | sum)"
	done
fi

# Every fallback query must have taken the fallback path, and every answer
# been NOERROR; say so loudly, and exit 1, otherwise.
FAILED=0
for s in fallback fallback_nocache; do
	reasons=$(curl -fsS "http://127.0.0.1:${MPORT[$s]}/metrics" | awk '/^coredns_fallback_requests_total\{/ { print }')
	grep -q 'reason="fell_off"' <<<"$reasons" || { echo "WARNING: $s: no query took the fallback path: $reasons" >&2; FAILED=1; }
	if grep -v 'reason="fell_off"' <<<"$reasons" | grep -q .; then echo "WARNING: $s: other reasons: $reasons" >&2; FAILED=1; fi
done
awk '$7 != 100 { printf "WARNING: %s rep %d: only %s%% NOERROR\n", $1, $2, $7; bad = 1 }
	$1 ~ /^fallback/ && ($12 - $13 > 0.001 || $13 - $12 > 0.001) {
		printf "WARNING: %s rep %d: %.3f upstream queries per query, but %.3f through fallback\n", $1, $2, $12, $13; bad = 1
	}
	END { exit bad }' "$RESULTS" >&2 || FAILED=1
exit "$FAILED"
