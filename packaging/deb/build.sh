#!/bin/sh
# Builds tailhorizon's .deb from a Linux binary of `make release`:
#
#   packaging/deb/build.sh BINARY GOARCH VERSION OUTDIR
#
# The package holds the binary as /usr/bin/tailhorizon, the systemd unit of
# docs/systemd (ExecStart pointed at it), the device Corefile as the
# conffile /etc/tailhorizon/Corefile, and the systemd-resolved drop-in as an
# example to copy (/usr/share/doc/tailhorizon/examples): the zone in it is a
# placeholder, and the package never changes how the machine resolves names.
# test/install (TestReleaseDeb) checks the result.
set -eu
if [ $# -ne 4 ]; then
    echo "usage: $0 BINARY GOARCH VERSION OUTDIR" >&2
    exit 2
fi
bin=$1 goarch=$2 version=$3 out=$4
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

case $goarch in
amd64) arch=amd64 ;;
arm64) arch=arm64 ;;
arm) arch=armhf ;; # GOARM=7
*) echo "$0: no Debian architecture for GOARCH $goarch" >&2; exit 1 ;;
esac
# A Debian version starts with a digit and has no hyphen without a
# revision: v0.1.0-3-gabcdef becomes 0.1.0+3+gabcdef, a bare commit 0~abcdef.
v=${version#v}
case $v in [0-9]*) ;; *) v=0~$v ;; esac
v=$(printf '%s' "$v" | tr -- '-' '+')

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
install -D -m 0755 "$bin" "$root/usr/bin/tailhorizon"
install -d -m 0755 "$root/lib/systemd/system"
sed 's|/usr/local/bin/coredns|/usr/bin/tailhorizon|g' "$top/docs/systemd/tailhorizon.service" \
    >"$root/lib/systemd/system/tailhorizon.service"
chmod 0644 "$root/lib/systemd/system/tailhorizon.service"
install -D -m 0644 "$top/docs/corefiles/device.Corefile" "$root/etc/tailhorizon/Corefile"
doc=$root/usr/share/doc/tailhorizon
install -D -m 0644 "$top/docs/systemd/resolved-tailhorizon.conf" "$doc/examples/resolved-tailhorizon.conf"
install -m 0644 "$here/copyright" "$doc/copyright"
printf 'tailhorizon (%s) unstable; urgency=medium\n\n  * Release %s, built by make release.\n\n -- tailhorizon developers <tailhorizon@example.org>  %s\n' \
    "$v" "$version" "$(date -u -R -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/tailhorizon"

install -d -m 0755 "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$v/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/control" >"$root/DEBIAN/control"
echo /etc/tailhorizon/Corefile >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/tailhorizon_${v}_${arch}.deb" >/dev/null
echo "$out/tailhorizon_${v}_${arch}.deb"
