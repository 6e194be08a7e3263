#!/bin/sh
# Builds the third-party binaries that test/realnet runs, unless they are
# already there, into ${TAILHORIZON_CACHE:-$HOME/.cache/tailhorizon}:
#
#	tailscale-VERSION/{tailscaled,tailscale}   for each TAILSCALE_VERSIONS
#	headscale-VERSION/headscale
#
# realnet (binaries.go) looks for them at the same paths, so keep the
# versions here and there in step. Running it again builds only what is
# missing; the Go build cache makes a rebuild cheap. It prints one line per
# binary and exits non-zero, saying why, if one cannot be built.
set -eu

TAILSCALE_VERSIONS="v1.102.5 v1.86.5"
HEADSCALE_VERSION="v0.27.1"

GO=${GO:-go}
CACHE=${TAILHORIZON_CACHE:-$HOME/.cache/tailhorizon}

die() {
	echo "build.sh: $*" >&2
	exit 1
}

# GOBIN and go build -o need an absolute path.
mkdir -p "$CACHE" || die "cannot make $CACHE"
CACHE=$(cd "$CACHE" && pwd)

# have reports whether every named file is an executable.
have() {
	for f in "$@"; do
		[ -x "$f" ] || return 1
	done
}

# report prints one line per binary and fails if one is still missing.
report() {
	how=$1
	shift
	for f in "$@"; do
		have "$f" || die "$f is missing after the build"
		echo "$f ($how)"
	done
}

for v in $TAILSCALE_VERSIONS; do
	dir=$CACHE/tailscale-$v
	bins="$dir/tailscaled $dir/tailscale"
	# shellcheck disable=SC2086 # bins is a list
	if have $bins; then
		report cached $bins
		continue
	fi
	mkdir -p "$dir"
	# go install with @version builds outside any main module, so this
	# repository's go.mod does not constrain tailscale's dependencies.
	GOBIN=$dir "$GO" install "tailscale.com/cmd/tailscaled@$v" "tailscale.com/cmd/tailscale@$v" ||
		die "go install tailscale $v failed"
	# shellcheck disable=SC2086
	report built $bins
done

hs=$CACHE/headscale-$HEADSCALE_VERSION/headscale
if have "$hs"; then
	report cached "$hs"
else
	# Build headscale as the main module in its own module directory, so
	# that its go.mod and go.sum pick every dependency, as in its releases.
	# go mod download runs outside this repository's module, which it must
	# not touch.
	mkdir -p "$(dirname "$hs")"
	dir=$(cd "$CACHE" && "$GO" mod download -json "github.com/juanfont/headscale@$HEADSCALE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	[ -n "$dir" ] && [ -d "$dir" ] || die "go mod download headscale $HEADSCALE_VERSION named no module directory"
	(cd "$dir" && "$GO" build -o "$hs" ./cmd/headscale) ||
		die "go build headscale $HEADSCALE_VERSION in $dir failed"
	report built "$hs"
fi
