package trustbundles

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
)

func TestName(t *testing.T) {
	for signer, want := range map[string]string{
		"issuers.cert-manager.io/team.ca":        "issuers.cert-manager.io:team.ca:ca",
		"issuers.cert-manager.io/team.ca.v2":     "issuers.cert-manager.io:team.ca.v2:ca",
		"clusterissuers.cert-manager.io/root-ca": "clusterissuers.cert-manager.io:root-ca:ca",
	} {
		if got := Name(signer); got != want {
			t.Errorf("Name(%q) = %q, want %q", signer, got, want)
		}
	}
}

func TestAnchors(t *testing.T) {
	root := testpki.MustCA(testpki.CAOptions{CommonName: "root"})
	inter := testpki.MustCA(testpki.CAOptions{CommonName: "intermediate", Parent: root})
	parse := func(data map[string][]byte) *signers.CA {
		t.Helper()
		ca, err := signers.ParseCA("ns/ca", data)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	for _, tc := range []struct {
		name string
		ca   *signers.CA
		want []string
	}{
		{"self-signed CA", parse(map[string][]byte{"tls.crt": root.CertPEM(), "tls.key": root.KeyPEM()}), []string{"root"}},
		{"intermediate with ca.crt: the root", parse(map[string][]byte{"tls.crt": inter.CertPEM(), "tls.key": inter.KeyPEM(), "ca.crt": root.CertPEM()}), []string{"root"}},
		{"chain in tls.crt: its last certificate", parse(map[string][]byte{"tls.crt": append(inter.CertPEM(), root.CertPEM()...), "tls.key": inter.KeyPEM()}), []string{"root"}},
		{"intermediate alone: itself", parse(map[string][]byte{"tls.crt": inter.CertPEM(), "tls.key": inter.KeyPEM()}), []string{"intermediate"}},
		{"nil", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range Anchors(tc.ca) {
				got = append(got, c.Subject.CommonName)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("anchors = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDesired(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ca := func(cn string, notAfter time.Time) *x509.Certificate {
		return testpki.MustCA(testpki.CAOptions{CommonName: cn, NotBefore: now.Add(-48 * time.Hour), NotAfter: notAfter}).Cert
	}
	year := now.Add(365 * 24 * time.Hour)
	old, cur, other := ca("old", year), ca("cur", year), ca("other", year)
	expired := ca("expired", now.Add(-time.Minute))
	oldSoon := ca("old-soon", now.Add(2*time.Hour))
	fp := Fingerprint
	for _, tc := range []struct {
		name        string
		current     []*x509.Certificate
		published   []*x509.Certificate
		issuedUntil map[string]time.Time
		want        []string // anchors, in order
		wantUntil   map[string]time.Time
		next        time.Time
	}{
		{
			name:    "new signer: its CA",
			current: []*x509.Certificate{cur},
			want:    []string{"cur"}, wantUntil: map[string]time.Time{}, next: year,
		},
		{
			name:      "rotation: the old CA stays while a certificate from it is valid",
			current:   []*x509.Certificate{cur},
			published: []*x509.Certificate{old},
			issuedUntil: map[string]time.Time{
				fp(old): now.Add(20 * time.Hour),
			},
			want:      []string{"cur", "old"},
			wantUntil: map[string]time.Time{fp(old): now.Add(20 * time.Hour)},
			next:      now.Add(20 * time.Hour),
		},
		{
			name:        "rotation: the old CA goes once its last certificate expired",
			current:     []*x509.Certificate{cur},
			published:   []*x509.Certificate{old},
			issuedUntil: map[string]time.Time{fp(old): now},
			want:        []string{"cur"}, wantUntil: map[string]time.Time{}, next: year,
		},
		{
			name:      "rotation: a CA nothing was issued from goes at once",
			current:   []*x509.Certificate{cur},
			published: []*x509.Certificate{old},
			want:      []string{"cur"}, wantUntil: map[string]time.Time{}, next: year,
		},
		{
			name:        "a kept CA goes when it expires, before its IssuedUntil",
			current:     []*x509.Certificate{cur},
			published:   []*x509.Certificate{oldSoon},
			issuedUntil: map[string]time.Time{fp(oldSoon): now.Add(20 * time.Hour)},
			want:        []string{"cur", "old-soon"},
			wantUntil:   map[string]time.Time{fp(oldSoon): now.Add(20 * time.Hour)},
			next:        now.Add(2 * time.Hour),
		},
		{
			name:        "an expired CA is never published",
			current:     []*x509.Certificate{expired},
			published:   []*x509.Certificate{expired},
			issuedUntil: map[string]time.Time{fp(expired): now.Add(time.Hour)},
			want:        nil, wantUntil: map[string]time.Time{},
		},
		{
			name:        "issuer not ready: kept CAs only",
			published:   []*x509.Certificate{cur, old},
			issuedUntil: map[string]time.Time{fp(cur): now.Add(time.Hour)},
			want:        []string{"cur"},
			wantUntil:   map[string]time.Time{fp(cur): now.Add(time.Hour)},
			next:        now.Add(time.Hour),
		},
		{
			name:        "current first, then published order, each once",
			current:     []*x509.Certificate{cur, cur},
			published:   []*x509.Certificate{other, cur, old},
			issuedUntil: map[string]time.Time{fp(other): now.Add(3 * time.Hour), fp(old): now.Add(2 * time.Hour), fp(cur): now.Add(time.Hour)},
			want:        []string{"cur", "other", "old"},
			wantUntil:   map[string]time.Time{fp(other): now.Add(3 * time.Hour), fp(old): now.Add(2 * time.Hour), fp(cur): now.Add(time.Hour)},
			next:        now.Add(2 * time.Hour),
		},
		{
			name:        "IssuedUntil of an anchor no longer published is dropped",
			current:     []*x509.Certificate{cur},
			issuedUntil: map[string]time.Time{fp(old): now.Add(time.Hour)},
			want:        []string{"cur"}, wantUntil: map[string]time.Time{}, next: year,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, next := Desired(tc.current, tc.published, tc.issuedUntil, now)
			var got []string
			for _, c := range b.Anchors {
				got = append(got, c.Subject.CommonName)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("anchors = %v, want %v", got, tc.want)
			}
			if len(b.IssuedUntil) != len(tc.wantUntil) {
				t.Errorf("IssuedUntil = %v, want %v", b.IssuedUntil, tc.wantUntil)
			}
			for k, v := range tc.wantUntil {
				if !b.IssuedUntil[k].Equal(v) {
					t.Errorf("IssuedUntil[%s] = %s, want %s", k, b.IssuedUntil[k], v)
				}
			}
			if !next.Equal(tc.next) {
				t.Errorf("next = %s, want %s", next, tc.next)
			}
		})
	}
}

func TestBundleRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := testpki.MustCA(testpki.CAOptions{CommonName: "a"}).Cert
	b := testpki.MustCA(testpki.CAOptions{CommonName: "b"}).Cert
	bundle := Bundle{Anchors: []*x509.Certificate{a, b}, IssuedUntil: map[string]time.Time{Fingerprint(b): now.Add(time.Hour)}}

	annotations := bundle.Annotations(map[string]string{
		"keep.example/other":               "x",
		IssuedUntilPrefix + Fingerprint(a): "2020-01-01T00:00:00Z", // stale: replaced
	})
	if annotations["keep.example/other"] != "x" {
		t.Error("another annotation was dropped")
	}
	if _, ok := annotations[IssuedUntilPrefix+Fingerprint(a)]; ok {
		t.Error("a stale IssuedUntil annotation was kept")
	}
	if got := annotations[IssuedUntilPrefix+Fingerprint(b)]; got != "2026-12-03T11:00:00Z" {
		t.Errorf("IssuedUntil annotation = %q", got)
	}
	if len(Fingerprint(a)) != 32 {
		t.Errorf("fingerprint %q: want 32 hex characters (an annotation name has at most 63)", Fingerprint(a))
	}
	parsed := ParseIssuedUntil(annotations)
	if len(parsed) != 1 || !parsed[Fingerprint(b)].Equal(now.Add(time.Hour)) {
		t.Errorf("ParseIssuedUntil = %v", parsed)
	}
	if len(ParseIssuedUntil(map[string]string{IssuedUntilPrefix + "x": "tomorrow"})) != 0 {
		t.Error("an unreadable time was parsed")
	}

	pemText := bundle.PEM()
	back := ParseBundle(pemText)
	if len(back) != 2 || !back[0].Equal(a) || !back[1].Equal(b) {
		t.Fatalf("ParseBundle(PEM()) = %d certificates", len(back))
	}
	// Only CA certificates are read back; other blocks are skipped.
	leaf := testpki.MustCA(testpki.CAOptions{CommonName: "leaf", NotCA: true}).Cert
	mixed := pemText + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})) + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	if got := ParseBundle(mixed); len(got) != 2 {
		t.Errorf("ParseBundle with a leaf and a key = %d certificates, want the 2 CAs", len(got))
	}
}

func TestKeepLaterAndCovers(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := testpki.MustCA(testpki.CAOptions{CommonName: "a"}).Cert
	b := testpki.MustCA(testpki.CAOptions{CommonName: "b"}).Cert
	until := map[string]time.Time{Fingerprint(a): now.Add(2 * time.Hour)}
	anchors := []*x509.Certificate{a, b}
	if covers(until, anchors, now) {
		t.Error("covers: b is not recorded")
	}
	if !keepLater(until, anchors, now.Add(time.Hour)) {
		t.Error("keepLater raised nothing")
	}
	if !until[Fingerprint(a)].Equal(now.Add(2*time.Hour)) || !until[Fingerprint(b)].Equal(now.Add(time.Hour)) {
		t.Errorf("keepLater lowered or missed an entry: %v", until)
	}
	if !covers(until, anchors, now.Add(time.Hour)) || covers(until, anchors, now.Add(time.Hour+time.Second)) {
		t.Error("covers is wrong at the boundary")
	}
	if covers(until, nil, now) {
		t.Error("no anchors must never count as recorded")
	}
}
