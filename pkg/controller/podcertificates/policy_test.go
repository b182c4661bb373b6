package podcertificates

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
)

func TestCheckNamespace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		podNS  string
		ref    issuers.Ref
		denied bool
	}{
		{"issuer in the pod's namespace", "team", issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "ca"}, false},
		{"issuer in another namespace", "other", issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "ca"}, true},
		{"cluster issuer from any namespace", "other", issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "ca"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := CheckNamespace(tc.podNS, tc.ref)
			if (d != nil) != tc.denied {
				t.Fatalf("CheckNamespace = %v, want denied=%v", d, tc.denied)
			}
			if d != nil && (d.Condition != certificatesv1.PodCertificateRequestConditionTypeDenied || d.Reason != ReasonDeniedNamespace ||
				!strings.Contains(d.Message, "pod in namespace other may not use Issuer team/ca")) {
				t.Errorf("denial = %+v", d)
			}
		})
	}
}

func TestCheckUserAnnotations(t *testing.T) {
	many := map[string]string{}
	for _, k := range []string{"a.example/1", "a.example/2", "a.example/3", "a.example/4", "a.example/5", "a.example/6", "a.example/7"} {
		many[k] = "v"
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        []string // in the message; nil: allowed
	}{
		{"none", nil, nil},
		{"empty", map[string]string{}, nil},
		{"one unknown key", map[string]string{"example.com/dns-names": "a.b"}, []string{`unknown unverifiedUserAnnotations key(s) "example.com/dns-names"`, "signet supports no unverifiedUserAnnotations keys"}},
		{"keys sorted, at most five named", many, []string{`"a.example/1", "a.example/2", "a.example/3", "a.example/4", "a.example/5" and 2 more`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := CheckUserAnnotations(tc.annotations)
			if tc.want == nil {
				if d != nil {
					t.Fatalf("denied: %v", d)
				}
				return
			}
			if d == nil || d.Condition != certificatesv1.PodCertificateRequestConditionTypeDenied || d.Reason != "InvalidUnverifiedUserAnnotations" {
				t.Fatalf("denial = %+v, want Denied/InvalidUnverifiedUserAnnotations", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(d.Message, w) {
					t.Errorf("message %q does not contain %q", d.Message, w)
				}
			}
		})
	}
}

// stub makes the request kubelet makes: an empty PKCS#10 request signed by key.
func stub(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPublicKeyEveryKubeletKeyType(t *testing.T) {
	for _, tc := range []struct {
		key  testpki.KeyType
		want string
	}{
		{testpki.RSA3072, "RSA3072"},
		{testpki.RSA4096, "RSA4096"},
		{testpki.ECDSAP256, "ECDSAP256"},
		{testpki.ECDSAP384, "ECDSAP384"},
		{testpki.ECDSAP521, "ECDSAP521"},
		{testpki.Ed25519, "ED25519"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			key, err := testpki.NewKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			pub, d := PublicKey(stub(t, key))
			if d != nil {
				t.Fatalf("denied: %v", d)
			}
			if !signers.PublicKeysEqual(pub, key.Public()) {
				t.Error("not the request's key")
			}
			if got := KeyType(pub); got != tc.want {
				t.Errorf("KeyType = %q, want %q", got, tc.want)
			}
		})
	}
	if len(KeyTypes) != 6 {
		t.Errorf("KeyTypes = %v, want the six kube-apiserver accepts", KeyTypes)
	}
}

func TestPublicKeyRefusals(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		stub      []byte
		condition string
		reason    string
		message   string
	}{
		{"RSA 2048", stub(t, rsa2048), "Denied", "UnsupportedKeyType", "signet does not sign RSA 2048 keys; use keyType ECDSAP256"},
		{"P-224", stub(t, p224), "Denied", "UnsupportedKeyType", "signet does not sign ECDSA P-224 keys; use keyType ECDSAP256"},
		{"not DER", []byte("-----BEGIN CERTIFICATE REQUEST-----"), "Failed", "ErrorParseCSR", "spec.stubPKCS10Request is not a PKCS#10 request"},
		{"empty", nil, "Failed", "ErrorParseCSR", "spec.stubPKCS10Request is not a PKCS#10 request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d := PublicKey(tc.stub)
			if d == nil || d.Condition != tc.condition || d.Reason != tc.reason || !strings.Contains(d.Message, tc.message) {
				t.Fatalf("got %+v, want %s/%s %q", d, tc.condition, tc.reason, tc.message)
			}
		})
	}
}

func TestServiceAccountUserAndSPIFFEID(t *testing.T) {
	user, groups := ServiceAccountUser("team", "web")
	if user != "system:serviceaccount:team:web" {
		t.Errorf("user = %q", user)
	}
	want := []string{"system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"}
	if strings.Join(groups, ",") != strings.Join(want, ",") {
		t.Errorf("groups = %v, want %v", groups, want)
	}
	if got := SPIFFEID("cluster.local", "team", "web").String(); got != "spiffe://cluster.local/ns/team/sa/web" {
		t.Errorf("SPIFFE ID = %s", got)
	}
}

func TestValidateTrustDomain(t *testing.T) {
	for td, ok := range map[string]bool{
		"cluster.local":           true,
		"prod_eu-1.example.com":   true,
		"":                        false,
		"Cluster.Local":           false,
		"a/b":                     false,
		"host:8080":               false,
		"spiffe://cluster.local":  false,
		strings.Repeat("a", 255):  true,
		strings.Repeat("a", 256):  false,
		"exämple.com":             false,
		"cluster.local\n":         false,
		"with space.example.com ": false,
	} {
		if err := ValidateTrustDomain(td); (err == nil) != ok {
			t.Errorf("ValidateTrustDomain(%q) = %v, want ok=%v", td, err, ok)
		}
	}
}

func TestLifetime(t *testing.T) {
	for _, tc := range []struct {
		name        string
		max         *int32
		maxDuration time.Duration
		want        time.Duration
	}{
		{"absent: kube-apiserver's default", nil, 0, 24 * time.Hour},
		{"maxExpirationSeconds", ptr.To[int32](7200), 0, 2 * time.Hour},
		{"91 days", ptr.To[int32](7862400), 0, 91 * 24 * time.Hour},
		{"--max-duration caps", ptr.To[int32](7862400), 48 * time.Hour, 48 * time.Hour},
		{"--max-duration longer than asked", ptr.To[int32](3600), 48 * time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lifetime(tc.max, tc.maxDuration); got != tc.want {
				t.Errorf("Lifetime = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestValidityFor(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 500_000_000, time.UTC)
	caCert := func(nb, na time.Time) *x509.Certificate { return &x509.Certificate{NotBefore: nb, NotAfter: na} }
	year := caCert(now.Add(-24*time.Hour), now.Add(365*24*time.Hour))
	for _, tc := range []struct {
		name   string
		d      time.Duration
		ca     *x509.Certificate
		nb, na time.Time
		wait   bool
	}{
		{"backdated a minute, whole seconds", 24 * time.Hour, year, now.Add(-time.Minute).Truncate(time.Second), now.Add(-time.Minute).Truncate(time.Second).Add(24 * time.Hour), false},
		{"not before the CA", time.Hour, caCert(now.Add(-10*time.Second), now.Add(24*time.Hour)), now.Add(-10 * time.Second), now.Add(-10 * time.Second).Add(time.Hour), false},
		{"not after the CA", 24 * time.Hour, caCert(now.Add(-time.Hour), now.Add(3*time.Hour)), now.Add(-time.Minute).Truncate(time.Second), now.Add(3 * time.Hour), false},
		{"CA expires within the hour: wait", 24 * time.Hour, caCert(now.Add(-time.Hour), now.Add(50*time.Minute)), time.Time{}, time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, w := ValidityFor(now, tc.d, tc.ca)
			if tc.wait {
				if w == nil || w.Reason != ReasonCAExpiresTooSoon {
					t.Fatalf("wait = %v, want %s", w, ReasonCAExpiresTooSoon)
				}
				return
			}
			if w != nil {
				t.Fatalf("wait: %v", w)
			}
			if !v.NotBefore.Equal(tc.nb) || !v.NotAfter.Equal(tc.na) {
				t.Errorf("validity [%s, %s], want [%s, %s]", v.NotBefore, v.NotAfter, tc.nb, tc.na)
			}
			if now.Sub(v.NotBefore) > 5*time.Minute {
				t.Errorf("NotBefore %s more than 5 minutes before now: kube-apiserver refuses it", v.NotBefore)
			}
			if v.NotAfter.Sub(v.NotBefore) < MinLifetime {
				t.Errorf("lifetime %s under %s", v.NotAfter.Sub(v.NotBefore), MinLifetime)
			}
			if v.BeginRefreshAt != BeginRefreshAt(v.NotBefore, v.NotAfter) {
				t.Errorf("BeginRefreshAt = %s", v.BeginRefreshAt)
			}
		})
	}
}

// BeginRefreshAt must fall where kube-apiserver accepts it for every lifetime
// a pod certificate may have, and at two thirds of it.
func TestBeginRefreshAtWithinKubeAPIServersBounds(t *testing.T) {
	nb := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for d := MinLifetime; d <= 91*24*time.Hour; d += 17*time.Minute + 3*time.Second {
		na := nb.Add(d)
		at := BeginRefreshAt(nb, na)
		if at.Before(nb.Add(10*time.Minute)) || at.After(na.Add(-10*time.Minute)) {
			t.Fatalf("lifetime %s: BeginRefreshAt %s outside [notBefore+10m, notAfter-10m]", d, at)
		}
		if want := nb.Add(d * 2 / 3).Truncate(time.Second); !at.Equal(want) {
			t.Fatalf("lifetime %s: BeginRefreshAt %s, want two thirds in, %s", d, at, want)
		}
		if at.Nanosecond() != 0 {
			t.Fatalf("BeginRefreshAt %s is not whole seconds", at)
		}
	}
	// A 1h certificate is refreshed 40 minutes in, 20 before it expires.
	if at := BeginRefreshAt(nb, nb.Add(time.Hour)); !at.Equal(nb.Add(40 * time.Minute)) {
		t.Errorf("1h: BeginRefreshAt = %s", at)
	}
}

// The template signed by a CA is the pod certificate the API describes.
func TestTemplateSignedByCA(t *testing.T) {
	root := testpki.MustCA(testpki.CAOptions{CommonName: "root"})
	parsed, err := signers.ParseCA("team/ca", map[string][]byte{"tls.crt": root.CertPEM(), "tls.key": root.KeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	key, err := testpki.NewKey(testpki.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v, w := ValidityFor(now, time.Hour, parsed.Certificate)
	if w != nil {
		t.Fatal(w)
	}
	tmpl, err := Template(key.Public(), SPIFFEID("cluster.local", "team", "web"), v)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ca.New(parsed, nil).Sign(tmpl, now)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := signers.ParseCertificates(res.CertificatePEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 {
		t.Fatalf("chain has %d certificates; a root CA signs: want the leaf alone", len(certs))
	}
	leaf := certs[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/team/sa/web" || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("names: URIs %v DNS %v IPs %v emails %v, want the SPIFFE ID alone", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if len(leaf.Subject.Names) != 0 {
		t.Errorf("subject = %s, want empty", leaf.Subject)
	}
	for _, e := range leaf.Extensions {
		if e.Id.String() == "2.5.29.17" && !e.Critical {
			t.Error("the SAN extension of a certificate with an empty subject must be critical")
		}
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 2 ||
		leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Errorf("usages %v %v, want digital signature, server auth, client auth", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("want basicConstraints CA:FALSE")
	}
	if !leaf.NotBefore.Equal(v.NotBefore) || !leaf.NotAfter.Equal(v.NotAfter) || !res.NotBefore.Equal(v.NotBefore) || !res.NotAfter.Equal(v.NotAfter) {
		t.Errorf("leaf [%s, %s], result [%s, %s], want [%s, %s]", leaf.NotBefore, leaf.NotAfter, res.NotBefore, res.NotAfter, v.NotBefore, v.NotAfter)
	}
	if !signers.PublicKeysEqual(leaf.PublicKey, key.Public()) {
		t.Error("not the pod's key")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify: %v", err)
	}
}
