package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// The public (VPS) addresses of the zone, from TEST-NET-2.
const (
	vpsIPv4  = "198.51.100.7"
	vpsIPv6  = "2001:db8:51::7"
	wwwIPv4  = "198.51.100.80"
	apexIPv4 = "198.51.100.1" // the website at the apex
)

// publicZone is the public zone of example.org as the VPSes publish it:
// every name points at the VPS, the apex has a website and mail, and an
// ACME challenge is set for hub.
var publicZone = `$ORIGIN example.org.
@       3600 IN SOA ns1.example.org. hostmaster.example.org. 2026112301 7200 1800 86400 60
@       3600 IN NS  ns1.example.org.
@       60   IN A   ` + apexIPv4 + `
@       3600 IN MX  10 mail.example.org.
ns1     3600 IN A   ` + vpsIPv4 + `
*       60   IN A   ` + vpsIPv4 + `
*       60   IN AAAA ` + vpsIPv6 + `
www     60   IN A   ` + wwwIPv4 + `
_acme-challenge.hub 60 IN TXT "public-token"
big     60   IN TXT ` + bigTXT + `
`

// bigTXT does not fit a 512-byte UDP answer, so it is truncated there.
var bigTXT = strings.TrimSpace(strings.Repeat(`"`+strings.Repeat("x", 200)+`" `, 4))

// startAuthority runs a second coredns, with the file plugin, as the
// public authority of example.org on loopback, and returns its address.
func startAuthority(t *testing.T) string {
	t.Helper()
	port := fixture.Port(t) // one port for UDP and TCP
	startCoreDNS(t, fmt.Sprintf("example.org:%d {\n    bind 127.0.0.1\n    file %s\n}\n", port, writeZone(t)))
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// startTLSAuthority serves the public zone's answers over DNS-over-TLS,
// from the plain authority, with a certificate for serverName. It returns
// its address and the CA file to verify it with.
func startTLSAuthority(t *testing.T, serverName string) (addr, caFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, serverName, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	plain := startAuthority(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Net: "tcp-tls", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if resp, err := dns.Exchange(r, plain); err == nil {
			w.WriteMsg(resp)
		}
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String(), certFile
}

func writeZone(t *testing.T) string {
	t.Helper()
	zone := filepath.Join(t.TempDir(), "db.example.org")
	if err := os.WriteFile(zone, []byte(publicZone), 0o644); err != nil {
		t.Fatal(err)
	}
	return zone
}

// writeSelfSigned writes a self-signed certificate for name and its key.
func writeSelfSigned(t *testing.T, name, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
