package servingcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"
	"time"
)

func testCA(t *testing.T, name string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemOf(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func namesIn(t *testing.T, bundle []byte) []string {
	t.Helper()
	var names []string
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return names
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("bundle holds an unparseable certificate: %v", err)
		}
		names = append(names, c.Subject.CommonName)
	}
}

func TestMergeBundle(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	stale := 5 * time.Minute
	later := now.Add(24 * time.Hour)
	own, peer, gone, foreign := testCA(t, "own", later), testCA(t, "peer", later), testCA(t, "gone", later), testCA(t, "foreign", later)
	expired := testCA(t, "expired", now.Add(-time.Minute))
	hb := func(c *x509.Certificate) string { return HeartbeatPrefix + fingerprint(c) }
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	garbage := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	key := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")

	for _, tc := range []struct {
		name        string
		bundle      []byte
		annotations map[string]string
		want        []string
		wantHB      []string // CAs with a heartbeat afterwards
		dropped     int
	}{
		{name: "empty bundle gets own CA", want: []string{"own"}, wantHB: []string{"own"}},
		{name: "live peer kept, own appended", bundle: pemOf(peer), annotations: map[string]string{hb(peer): at(-time.Minute)},
			want: []string{"peer", "own"}, wantHB: []string{"peer", "own"}},
		{name: "peer without heartbeat for long is dropped with its annotation", bundle: pemOf(gone, own),
			annotations: map[string]string{hb(gone): at(-stale - time.Second), hb(own): at(-time.Hour)},
			want:        []string{"own"}, wantHB: []string{"own"}, dropped: 1},
		{name: "unreadable heartbeat is stale", bundle: pemOf(gone), annotations: map[string]string{hb(gone): "yesterday"},
			want: []string{"own"}, wantHB: []string{"own"}, dropped: 1},
		{name: "CA nobody heartbeats is someone else's: kept", bundle: pemOf(foreign), want: []string{"foreign", "own"}, wantHB: []string{"own"}},
		{name: "expired CA dropped even without heartbeat", bundle: pemOf(expired, foreign), want: []string{"foreign", "own"}, wantHB: []string{"own"}, dropped: 1},
		{name: "garbage and non-certificate blocks dropped", bundle: append(append(garbage, key...), pemOf(peer)...),
			annotations: map[string]string{hb(peer): at(0)}, want: []string{"peer", "own"}, wantHB: []string{"peer", "own"}},
		{name: "duplicates removed, order kept", bundle: pemOf(own, foreign, own, foreign), want: []string{"own", "foreign"}, wantHB: []string{"own"}},
		{name: "leftover heartbeat of a CA not in the bundle removed", annotations: map[string]string{hb(gone): at(0), "other": "kept"},
			want: []string{"own"}, wantHB: []string{"own"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mergeBundle(tc.bundle, tc.annotations, []*x509.Certificate{own}, now, stale)
			if got := namesIn(t, m.bundle); !slices.Equal(got, tc.want) {
				t.Errorf("bundle = %v, want %v", got, tc.want)
			}
			var gotHB []string
			for _, c := range []*x509.Certificate{own, peer, gone, foreign, expired} {
				if _, ok := m.annotations[hb(c)]; ok {
					gotHB = append(gotHB, c.Subject.CommonName)
				}
			}
			slices.Sort(gotHB)
			wantHB := slices.Sorted(slices.Values(tc.wantHB))
			if !slices.Equal(gotHB, wantHB) {
				t.Errorf("heartbeats for %v, want %v", gotHB, wantHB)
			}
			if m.annotations[hb(own)] != now.Format(time.RFC3339) {
				t.Errorf("own heartbeat = %q, want now", m.annotations[hb(own)])
			}
			if v, ok := tc.annotations["other"]; ok && m.annotations["other"] != v {
				t.Error("an annotation that is not a heartbeat was changed")
			}
			if len(m.dropped) != tc.dropped {
				t.Errorf("dropped %v, want %d", m.dropped, tc.dropped)
			}
		})
	}
}
