#!/usr/bin/env bash
# load.sh runs one tailhorizon coredns, shaped as on a device (cache,
# fallback, tailnet with an alias, mdns, and a public stand-in in its own
# process), against the demo world (cmd/demo/world: a real tailnet and an
# mDNS LAN in a network namespace of their own), under dnsperf at
# saturation with a mixed query set, and checks that
#
#   1. no query is lost;
#   2. every query of a name that has an answer gets NOERROR (no SERVFAIL,
#      no NXDOMAIN), and every query of a name that has none NXDOMAIN,
#      counted per class of name from dnsperf's per-query output (-v);
#   3. the answers are right, asked with dig before and after the load;
#   4. the server's VmRSS, sampled every LOAD_SAMPLE seconds, stays flat
#      after the warm-up: it grows by at most LOAD_RSS_GROWTH percent (or
#      LOAD_RSS_SLACK KiB, whichever is larger) from the first sample after
#      LOAD_WARMUP seconds to the last.
#
# It prints the figures and exits 1 if a check fails. It is not part of
# make test (a minute or more, and it needs root for the demo LAN); see
# docs/benchmarks.md ("## Load").
#
# Usage: test/load.sh [COREDNS_BINARY]
#
# Without a binary it runs `make build` and uses bin/coredns; it builds
# bin/demo unless DEMO names one. Knobs, from the environment (defaults in
# brackets):
#   LOAD_DURATION     seconds of the saturating run [60]
#   LOAD_WARMUP       seconds after which VmRSS must stay flat [15]
#   LOAD_SAMPLE       seconds between two VmRSS samples [5]
#   LOAD_RSS_GROWTH   allowed VmRSS growth after the warm-up, percent [10]
#   LOAD_RSS_SLACK    allowed VmRSS growth after the warm-up, KiB [4096]
#   OUTSTANDING       dnsperf -q, queries in flight [100]
#   SERVER_CPU        core for the server [0]
#   CLIENT_CPU        core for dnsperf, the public stand-in and the world [1]
#
# Everything listens on, and sends only to, 127.0.0.1 and the demo world's
# namespace; every process this script starts is stopped on exit, and its
# temporary directory removed.
set -euo pipefail

SCRIPT=load.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"
LOAD_DURATION=${LOAD_DURATION:-60}
LOAD_WARMUP=${LOAD_WARMUP:-15}
LOAD_SAMPLE=${LOAD_SAMPLE:-5}
LOAD_RSS_GROWTH=${LOAD_RSS_GROWTH:-10}
LOAD_RSS_SLACK=${LOAD_RSS_SLACK:-4096}
LAN_NAS=198.18.1.2 # nas.local on the demo LAN

bench_init dnsperf dig taskset curl ss go
[[ $(id -u) == 0 ]] || fail "needs root: the demo world's mDNS LAN is a veth pair"
((LOAD_WARMUP < LOAD_DURATION)) || fail "LOAD_WARMUP ($LOAD_WARMUP) must be shorter than LOAD_DURATION ($LOAD_DURATION)"
build_coredns "$@"

echo "starting the demo world" >&2
start_world
start_authority "$PUBLIC_ZONE"
wait_answer auth www.example.org 203.0.113.10
# nas is offline on the tailnet: its names are answered from the LAN.
node offline nas
BODY[device]=$(device_body "$WORLD_SOCKET" "$WORLD_LAN")
start_servers "$SERVER_CPU" device
wait_answer device nas.example.org "$LAN_NAS"

# The mixed query set: NAME TYPE CLASS WEIGHT ANSWER, where ANSWER is the
# address the answer must hold, NODATA for NOERROR without one, or NXDOMAIN.
# The weights are lines of every 1,000 of the query file.
hub4=${NODE_V4[hub]} hub6=${NODE_V6[hub]} lap4=${NODE_V4[laptop]}
cat >"$TMP/mix" <<EOF
desktop.example.org A tailnet 50 ${NODE_V4[desktop]}
hub.example.org A tailnet 60 $hub4
hub.example.org AAAA tailnet 40 $hub6
laptop.example.org A tailnet 60 $lap4
laptop.example.org AAAA tailnet 40 ${NODE_V6[laptop]}
grafana.hub.example.org A wildcard 70 $hub4
grafana.hub.example.org AAAA wildcard 30 $hub6
prometheus.hub.example.org A wildcard 50 $hub4
a.b.laptop.example.org A wildcard 50 $lap4
registry.example.org A alias 60 $hub4
registry.example.org AAAA alias 40 $hub6
nas.example.org A mdns 70 $LAN_NAS
files.nas.example.org A mdns 20 $LAN_NAS
nas.example.org AAAA mdns 10 NODATA
www.example.org A public 60 203.0.113.10
blog.example.org A public 30 203.0.113.11
shop.example.org A public 30 203.0.113.12
mail.example.org A public 30 203.0.113.13
EOF
# ... and 200 names that exist nowhere, one line each.
for i in $(seq -w 0 199); do
	echo "nx-$i.example.org A nxdomain 1 NXDOMAIN"
done >>"$TMP/mix"
awk '{ for (i = 0; i < $4; i++) print $1, $2 }' "$TMP/mix" |
	awk 'BEGIN { srand(1) } { printf "%.9f %s\n", rand(), $0 }' | sort -k1,1 | cut -d' ' -f2- >"$TMP/queries"

# check WHEN: asks the server with dig for every name of the mix but the
# 197 last nx- names (each waits for mdns's timeout), and reports
# (FAILED=1) every answer that is not the expected one.
FAILED=0
check() {
	local name type class weight want out status bad=0
	while read -r name type class weight want; do
		[[ $class != nxdomain || $name == nx-00[0-2].* ]] || continue
		out=$(dig +tries=2 +time=2 +noall +comments +answer -p "${PORT[device]}" @127.0.0.1 "$name" "$type" 2>&1 || true)
		status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
		case $want in
		NXDOMAIN) [[ $status == NXDOMAIN ]] ;;
		NODATA) [[ $status == NOERROR ]] && ! grep -q "IN[[:space:]]*$type[[:space:]]" <<<"$out" ;;
		*) [[ $status == NOERROR ]] && grep -q "IN[[:space:]]*$type[[:space:]]*$want\$" <<<"$out" ;;
		esac || {
			echo "  $1: $name $type: got ${status:-no answer}, want $want" >&2
			bad=1
		}
	done <"$TMP/mix"
	if ((bad)); then
		FAILED=1
		echo "FAIL: answers $1 the load" >&2
	fi
	CHECK[$1]=$((bad == 0))
}
declare -A CHECK=()
echo "checking the answers" >&2
check before

# The load, with VmRSS sampled every LOAD_SAMPLE seconds meanwhile.
samples=$((LOAD_DURATION / LOAD_SAMPLE + 1))
(
	for i in $(seq 0 $((samples - 1))); do
		echo "$((i * LOAD_SAMPLE)) $(rss "${PID[device]}")"
		sleep "$LOAD_SAMPLE"
	done
) >"$TMP/rss" &
PIDS+=("$!")
sampler=$!
echo "load: $LOAD_DURATION s at saturation" >&2
before=$(snapshot device)
# dnsperf's -v lines ("> RCODE NAME TYPE LATENCY") are counted per class
# as they come; the rest (its statistics) go to TMP/stats.
dnsperf_to device -q "$OUTSTANDING" -l "$LOAD_DURATION" -v 2>&1 |
	taskset -c "$CLIENT_CPU" awk -v mix="$TMP/mix" -v stats="$TMP/stats" -v counts="$TMP/counts" '
		BEGIN { while ((getline l < mix) > 0) { split(l, f, " "); class[tolower(f[1]) " " f[2]] = f[3] } }
		$1 == ">" && NF == 5 { k = tolower($3) " " $4; n[((k in class) ? class[k] : "unknown") " " $2]++; next }
		{ print > stats }
		END { for (k in n) print k, n[k] > counts }'
after=$(snapshot device)
wait "$sampler" || true
[[ -s $TMP/counts ]] || { cat "$TMP/stats" >&2; fail "dnsperf printed no answers"; }
check after

# ---- the report ----
lost=$(awk '/Queries lost:/ { print $3 }' "$TMP/stats")
echo
describe_machine
echo
echo "Device server: \`cache 30\`, \`fallback\` (\`max_ttl 10\`, \`policy registry tailnet lan\`), \`tailnet\` (\`alias registry hub\`," \
	"\`fallthrough\`), \`mdns\` (the demo LAN, \`fallthrough\`); the public stand-in in its own process. nas is offline on the tailnet."
echo "dnsperf -c 1 -T 1 -q $OUTSTANDING -l $LOAD_DURATION -v over $(wc -l <"$TMP/queries") lines of the mixed set, in a loop."
echo
awk -v before="$before" -v after="$after" -v hz="$HZ" -v d="$LOAD_DURATION" -v cc="$CLIENT_CPU" '
	/Queries sent:/ { sent = $3 } /Queries completed:/ { done = $3 } /Queries lost:/ { lost = $3 } /Queries per second:/ { qps = $4 }
	/Average Latency/ { avg = $4; gsub(/[^0-9.]/, "", $8); max = $8 }
	END {
		split(before, b); split(after, a)
		printf "| queries sent | completed | lost | QPS | avg latency ms | max latency ms | server CPU | core %d busy |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n", cc
		printf "| %d | %d | %d | %.0f | %.3f | %.1f | %.0f%% | %.0f%% |\n", sent, done, lost, qps, avg * 1e3, max * 1e3,
			100 * (a[1] - b[1]) / hz / d, 100 * (a[3] - b[3]) / hz / d
	}' "$TMP/stats"
echo
echo "| class | names | NOERROR | NXDOMAIN | SERVFAIL | other | want |"
echo "|---|---|---:|---:|---:|---:|---|"
rcodes_ok=1
for class in tailnet wildcard alias mdns public nxdomain unknown; do
	names=$(awk -v c="$class" '$3 == c { n++; if (n <= 4) s = s (n > 1 ? ", " : "") $1 " " $2 } END { if (n > 4) s = s ", … (" n ")"; print s }' "$TMP/mix")
	read -r noerror nxdomain servfail other < <(awk -v c="$class" '$1 == c { r[$2] += $3; t += $3 }
		END { print r["NOERROR"] + 0, r["NXDOMAIN"] + 0, r["SERVFAIL"] + 0, t - r["NOERROR"] - r["NXDOMAIN"] - r["SERVFAIL"] }' "$TMP/counts")
	want=NOERROR
	[[ $class != nxdomain ]] || want=NXDOMAIN
	if [[ $class == unknown ]]; then
		((noerror + nxdomain + servfail + other == 0)) && continue
		want="none"
	fi
	echo "| $class | $names | $noerror | $nxdomain | $servfail | $other | $want |"
	case $want in
	NOERROR) ((nxdomain + servfail + other == 0 && noerror > 0)) ;;
	NXDOMAIN) ((noerror + servfail + other == 0 && nxdomain > 0)) ;;
	*) false ;;
	esac || rcodes_ok=0
done

# VmRSS: the series, and its growth from the first sample at or after the
# warm-up to the last.
echo
echo "VmRSS every $LOAD_SAMPLE s (MiB): $(awk '{ printf "%s%.1f", sep, $2 / 1024; sep = " " }' "$TMP/rss")."
read -r warm last growth allowed < <(awk -v w="$LOAD_WARMUP" -v pct="$LOAD_RSS_GROWTH" -v slack="$LOAD_RSS_SLACK" '
	$1 >= w && warm == "" { warm = $2 } { last = $2 }
	END { allowed = warm * pct / 100; if (allowed < slack) allowed = slack; print warm, last, last - warm, allowed }' "$TMP/rss")
echo "VmRSS after the ${LOAD_WARMUP}-second warm-up $((warm / 1024)) MiB, at the end $((last / 1024)) MiB:" \
	"growth $(printf %+d "$growth") KiB (allowed $allowed KiB); VmHWM $(($(rss "${PID[device]}" | cut -d' ' -f2) / 1024)) MiB."

# The verdict.
echo
verdict() { if (($2)); then echo "PASS: $1"; else echo "FAIL: $1"; FAILED=1; fi; }
verdict "no query lost ($lost)" $((lost == 0))
verdict "every query answered with its class's rcode" "$rcodes_ok"
verdict "answers right before and after the load" $((CHECK[before] && CHECK[after]))
verdict "VmRSS flat after the warm-up ($(printf %+d "$growth") KiB, at most +$allowed)" $((growth <= allowed))
kill -0 "${PID[device]}" 2>/dev/null || verdict "the server still runs" 0
exit "$FAILED"
