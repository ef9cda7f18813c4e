package publisher_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cvmwatch/cvmwatch/publisher"
)

// pki is a throwaway CA with a server and a client certificate on disk.
type pki struct {
	caFile, certFile, keyFile string // the client's
	server                    *tls.Config
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cvmwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvCert, srvKey := issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := issue("cvmwatch", x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{
		caFile:   write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		certFile: write("client.pem", cliCert),
		keyFile:  write("client-key.pem", cliKey),
		server: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	}
}

// TestConnectMutualTLS connects to a server that requires TLS with a client
// certificate: with the CA, certificate and key it works; without the client
// certificate the server refuses, and Connect says so instead of hanging.
func TestConnectMutualTLS(t *testing.T) {
	p := newPKI(t)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		TLS: true, TLSVerify: true, TLSConfig: p.server, TLSTimeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("TLS server not ready")
	}
	url := "tls://" + s.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	nc, err := publisher.Connect(publisher.ConnConfig{URLs: []string{url}, CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}, log)
	if err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	if !nc.TLSRequired() || !nc.IsConnected() {
		t.Fatalf("connected=%v tls=%v", nc.IsConnected(), nc.TLSRequired())
	}
	if err := nc.Publish("cvm.tls.check", []byte("x")); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	start := time.Now()
	_, err = publisher.Connect(publisher.ConnConfig{URLs: []string{url}, CAFile: p.caFile, ConnectTimeout: 2 * time.Second}, log)
	if err == nil {
		t.Fatal("connected without the client certificate the server requires")
	}
	if time.Since(start) > time.Minute {
		t.Fatalf("refusal took %v", time.Since(start))
	}
}
