package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

// writeTLS writes a CA and a server certificate for 127.0.0.1 signed by
// it, as PEM files in dir, and returns their paths.
func writeTLS(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chattap test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestEmbeddedNATSOverTLS: the embedded server serves TLS on
// CHATTAP_NATS_LISTEN; another chattap that trusts its CA connects, one
// that does not is refused.
func TestEmbeddedNATSOverTLS(t *testing.T) {
	ca, cert, key := writeTLS(t, t.TempDir())
	natsAddr := brokertest.FreeAddr(t)
	creds := []string{"CHATTAP_NATS_USER=chattap", "CHATTAP_NATS_PASSWORD=tls-pw-4410"}
	first := start(t, append(creds, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_NATS_TLS_CERT="+cert, "CHATTAP_NATS_TLS_KEY="+key, "CHATTAP_FILE_SINK_PATH=")...)
	if !strings.Contains(first.stderr.String(), "tls=true") {
		t.Errorf("the startup log does not say TLS is on:\n%s", first.stderr)
	}
	url := "tls://" + natsAddr
	second := start(t, append(creds, "CHATTAP_NATS_URL="+url, "CHATTAP_NATS_TLS_CA="+ca, "CHATTAP_ROLES=ingest", "CHATTAP_FILE_SINK_PATH=")...)
	if code, body := second.get(t, "/readyz", nil); code != 200 {
		t.Errorf("over TLS: readyz %d %s", code, body)
	}
	err := serveFails(t, append(creds, "CHATTAP_NATS_URL="+url, "CHATTAP_LISTEN_ADDR=127.0.0.1:0", "CHATTAP_ROLES=ingest")...)
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
}
