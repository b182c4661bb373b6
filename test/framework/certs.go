package framework

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The DNS name kube-apiserver uses as the TLS ServerName when it proxies to
// the Service signet-system/signet; signet's serving certificate must carry it.
const signetServiceDNSName = SignetServiceName + "." + SignetNamespace + ".svc"

// FrontProxyClientName is the CN of the client certificate kube-apiserver
// presents to aggregated servers, and the only name in
// --requestheader-allowed-names.
const FrontProxyClientName = "front-proxy-client"

// KeyPair is a certificate and its ECDSA P-256 key, parsed and PEM-encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// CA is a self-signed certificate authority that issues leaf certificates.
type CA struct {
	KeyPair
}

// NewCA returns a new self-signed ECDSA P-256 CA valid for ten years.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key for CA %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	kp, err := sign(tmpl, key, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("self-signing CA %q: %w", commonName, err)
	}
	return &CA{KeyPair: *kp}, nil
}

// NewClientCert issues a client certificate that kube-apiserver (and any
// server trusting this CA) authenticates as user, with groups as the
// certificate's organizations.
func (ca *CA) NewClientCert(user string, groups ...string) (*KeyPair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	kp, err := ca.issue(tmpl)
	if err != nil {
		return nil, fmt.Errorf("issuing client certificate for %q: %w", user, err)
	}
	return kp, nil
}

// NewServingCert issues a TLS serving certificate for hosts, each a DNS name
// or an IP address.
func (ca *CA) NewServingCert(commonName string, hosts ...string) (*KeyPair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	kp, err := ca.issue(tmpl)
	if err != nil {
		return nil, fmt.Errorf("issuing serving certificate for %v: %w", hosts, err)
	}
	return kp, nil
}

func (ca *CA) issue(tmpl *x509.Certificate) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(365 * 24 * time.Hour)
	tmpl.BasicConstraintsValid = true
	return sign(tmpl, key, ca.Cert, ca.Key)
}

// sign signs tmpl for key's public half with parentKey, or self-signs when
// parent is nil.
func sign(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey crypto.Signer) (*KeyPair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeECKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  keyPEM,
	}, nil
}

func encodeECKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// PKI is every certificate and key the control plane and signet need.
type PKI struct {
	// ClientCA signs the client certificates kube-apiserver accepts
	// (--client-ca-file): the admin's and any test user's.
	ClientCA *CA
	// Admin is a client certificate in group system:masters.
	Admin *KeyPair
	// ServingCA signs kube-apiserver's serving certificate; clients trust it.
	ServingCA *CA
	// APIServerServing is kube-apiserver's serving certificate, for
	// 127.0.0.1 and localhost.
	APIServerServing *KeyPair
	// FrontProxyCA signs FrontProxyClient (--requestheader-client-ca-file).
	FrontProxyCA *CA
	// FrontProxyClient is what kube-apiserver presents to aggregated servers
	// (--proxy-client-cert-file), CN front-proxy-client.
	FrontProxyClient *KeyPair
	// ServiceAccountKey signs service account tokens.
	ServiceAccountKey *ecdsa.PrivateKey
	// SignetCA signs SignetServing; it is the APIService's caBundle.
	SignetCA *CA
	// SignetServing is signet's serving certificate, valid for the name
	// kube-apiserver proxies to (signet.signet-system.svc) and loopback.
	SignetServing *KeyPair
}

// NewPKI generates a fresh PKI, in memory only.
func NewPKI() (*PKI, error) {
	var p PKI
	var err error
	if p.ClientCA, err = NewCA("signet-test-client-ca"); err != nil {
		return nil, err
	}
	if p.Admin, err = p.ClientCA.NewClientCert("admin", "system:masters"); err != nil {
		return nil, err
	}
	if p.ServingCA, err = NewCA("signet-test-kube-apiserver-ca"); err != nil {
		return nil, err
	}
	if p.APIServerServing, err = p.ServingCA.NewServingCert("kube-apiserver", "127.0.0.1", "localhost"); err != nil {
		return nil, err
	}
	if p.FrontProxyCA, err = NewCA("signet-test-front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.FrontProxyClient, err = p.FrontProxyCA.NewClientCert(FrontProxyClientName); err != nil {
		return nil, err
	}
	if p.ServiceAccountKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("generating service account key: %w", err)
	}
	if p.SignetCA, err = NewCA("signet-test-serving-ca"); err != nil {
		return nil, err
	}
	if p.SignetServing, err = p.SignetCA.NewServingCert("signet", signetServiceDNSName, "localhost", "127.0.0.1"); err != nil {
		return nil, err
	}
	return &p, nil
}

// PKIFiles are the paths WritePKI wrote, named after the flags they feed.
type PKIFiles struct {
	ClientCA             string
	ServingCA            string
	APIServerCert        string
	APIServerKey         string
	FrontProxyCA         string
	FrontProxyClientCert string
	FrontProxyClientKey  string
	ServiceAccountKey    string
	ServiceAccountPublic string
	SignetCA             string
	SignetServingCert    string
	SignetServingKey     string
	AdminClientCert      string
	AdminClientKey       string
}

// WritePKI writes p as PEM files into dir (created if needed); keys are
// readable by the owner only.
func WritePKI(p *PKI, dir string) (PKIFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return PKIFiles{}, err
	}
	saKey, err := encodeECKey(p.ServiceAccountKey)
	if err != nil {
		return PKIFiles{}, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(p.ServiceAccountKey.Public())
	if err != nil {
		return PKIFiles{}, err
	}
	f := PKIFiles{
		ClientCA:             filepath.Join(dir, "client-ca.crt"),
		ServingCA:            filepath.Join(dir, "serving-ca.crt"),
		APIServerCert:        filepath.Join(dir, "kube-apiserver.crt"),
		APIServerKey:         filepath.Join(dir, "kube-apiserver.key"),
		FrontProxyCA:         filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
		ServiceAccountKey:    filepath.Join(dir, "sa.key"),
		ServiceAccountPublic: filepath.Join(dir, "sa.pub"),
		SignetCA:             filepath.Join(dir, "signet-ca.crt"),
		SignetServingCert:    filepath.Join(dir, "signet.crt"),
		SignetServingKey:     filepath.Join(dir, "signet.key"),
		AdminClientCert:      filepath.Join(dir, "admin.crt"),
		AdminClientKey:       filepath.Join(dir, "admin.key"),
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.ClientCA, p.ClientCA.CertPEM, 0o644},
		{f.ServingCA, p.ServingCA.CertPEM, 0o644},
		{f.APIServerCert, p.APIServerServing.CertPEM, 0o644},
		{f.APIServerKey, p.APIServerServing.KeyPEM, 0o600},
		{f.FrontProxyCA, p.FrontProxyCA.CertPEM, 0o644},
		{f.FrontProxyClientCert, p.FrontProxyClient.CertPEM, 0o644},
		{f.FrontProxyClientKey, p.FrontProxyClient.KeyPEM, 0o600},
		{f.ServiceAccountKey, saKey, 0o600},
		{f.ServiceAccountPublic, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}), 0o644},
		{f.SignetCA, p.SignetCA.CertPEM, 0o644},
		{f.SignetServingCert, p.SignetServing.CertPEM, 0o644},
		{f.SignetServingKey, p.SignetServing.KeyPEM, 0o600},
		{f.AdminClientCert, p.Admin.CertPEM, 0o644},
		{f.AdminClientKey, p.Admin.KeyPEM, 0o600},
	}
	for _, file := range files {
		if err := os.WriteFile(file.path, file.data, file.mode); err != nil {
			return PKIFiles{}, err
		}
	}
	return f, nil
}
