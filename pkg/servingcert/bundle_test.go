package servingcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"slices"
	"strings"
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
		if b.Type != "CERTIFICATE" {
			t.Fatalf("bundle holds a %s block", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("bundle holds an unparseable certificate: %v", err)
		}
		names = append(names, c.Subject.CommonName)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestMergeBundle(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	const staleAfter = 5 * time.Minute
	later := now.Add(24 * time.Hour)
	cas := map[string]*x509.Certificate{}
	for _, name := range []string{"own", "next", "peer", "peer2", "gone", "foreign", "foreign2"} {
		cas[name] = testCA(t, name, later)
	}
	cas["expired"] = testCA(t, "expired", now.Add(-time.Minute))
	cas["expiredPeer"] = testCA(t, "expiredPeer", now.Add(-time.Second))
	pemNamed := func(names ...string) []byte {
		var out []byte
		for _, n := range names {
			out = append(out, pemOf(cas[n])...)
		}
		return out
	}
	hb := func(name string) string { return HeartbeatPrefix + Fingerprint(cas[name]) }
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	garbage := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	key := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")

	for _, tc := range []struct {
		name        string
		bundle      []byte
		annotations map[string]string
		own         []string // default: "own"
		want        []string // the bundle's CAs, in order
		wantHB      []string // the CAs with a heartbeat afterwards
		wantDropped []string
	}{
		{name: "empty bundle gets own CA with a heartbeat", want: []string{"own"}, wantHB: []string{"own"}},
		{name: "own CA already there keeps its place, heartbeat refreshed however old",
			bundle:      pemNamed("foreign", "own", "peer"),
			annotations: map[string]string{hb("own"): at(-time.Hour), hb("peer"): at(-time.Minute)},
			want:        []string{"foreign", "own", "peer"}, wantHB: []string{"own", "peer"}},
		{name: "current and next own CA both kept with heartbeats", own: []string{"own", "next"}, bundle: pemNamed("own"),
			annotations: map[string]string{hb("own"): at(-time.Minute)},
			want:        []string{"own", "next"}, wantHB: []string{"own", "next"}},
		{name: "live peer kept with its heartbeat, own appended", bundle: pemNamed("peer"), annotations: map[string]string{hb("peer"): at(-time.Minute)},
			want: []string{"peer", "own"}, wantHB: []string{"peer", "own"}},
		{name: "peer whose heartbeat is older than staleAfter dropped with its annotation", bundle: pemNamed("gone", "own"),
			annotations: map[string]string{hb("gone"): at(-staleAfter - time.Second), hb("own"): at(-time.Hour)},
			want:        []string{"own"}, wantHB: []string{"own"}, wantDropped: []string{"gone"}},
		{name: "heartbeat exactly staleAfter old is still live", bundle: pemNamed("peer"), annotations: map[string]string{hb("peer"): at(-staleAfter)},
			want: []string{"peer", "own"}, wantHB: []string{"peer", "own"}},
		{name: "heartbeat from a clock ahead of ours is live", bundle: pemNamed("peer"), annotations: map[string]string{hb("peer"): at(time.Hour)},
			want: []string{"peer", "own"}, wantHB: []string{"peer", "own"}},
		{name: "unreadable heartbeat is stale", bundle: pemNamed("gone"), annotations: map[string]string{hb("gone"): "yesterday"},
			want: []string{"own"}, wantHB: []string{"own"}, wantDropped: []string{"gone"}},
		{name: "CA nobody heartbeats is someone else's: kept", bundle: pemNamed("foreign"), want: []string{"foreign", "own"}, wantHB: []string{"own"}},
		{name: "expired CA dropped even without heartbeat", bundle: pemNamed("expired", "foreign"),
			want: []string{"foreign", "own"}, wantHB: []string{"own"}, wantDropped: []string{"expired"}},
		{name: "expired peer CA dropped despite a fresh heartbeat", bundle: pemNamed("expiredPeer", "peer"),
			annotations: map[string]string{hb("expiredPeer"): at(0), hb("peer"): at(0)},
			want:        []string{"peer", "own"}, wantHB: []string{"peer", "own"}, wantDropped: []string{"expiredPeer"}},
		{name: "garbage, non-certificate blocks and text between blocks dropped",
			bundle:      cat(garbage, pemNamed("peer"), key, []byte("# a comment\n"), pemNamed("foreign")),
			annotations: map[string]string{hb("peer"): at(0)},
			want:        []string{"peer", "foreign", "own"}, wantHB: []string{"peer", "own"}},
		{name: "duplicates removed, first place kept", bundle: pemNamed("foreign", "peer", "foreign", "own", "peer", "own"),
			annotations: map[string]string{hb("peer"): at(0)},
			want:        []string{"foreign", "peer", "own"}, wantHB: []string{"peer", "own"}},
		{name: "order of kept entries kept across drops",
			bundle:      pemNamed("foreign2", "gone", "peer2", "expired", "foreign", "peer"),
			annotations: map[string]string{hb("gone"): at(-time.Hour), hb("peer"): at(-time.Second), hb("peer2"): at(-time.Second)},
			want:        []string{"foreign2", "peer2", "foreign", "peer", "own"}, wantHB: []string{"peer", "peer2", "own"},
			wantDropped: []string{"gone", "expired"}},
		{name: "leftover heartbeat of a CA not in the bundle removed, other annotations kept",
			annotations: map[string]string{hb("gone"): at(0), hb("peer"): at(-time.Hour), "other": "kept"},
			want:        []string{"own"}, wantHB: []string{"own"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ownNames := tc.own
			if ownNames == nil {
				ownNames = []string{"own"}
			}
			var own []*x509.Certificate
			for _, n := range ownNames {
				own = append(own, cas[n])
			}
			input := maps.Clone(tc.annotations)
			m := mergeBundle(tc.bundle, tc.annotations, own, now, staleAfter)

			if got := namesIn(t, m.bundle); !slices.Equal(got, tc.want) {
				t.Errorf("bundle = %v, want %v", got, tc.want)
			}
			var gotHB []string
			for name := range cas {
				if _, ok := m.annotations[hb(name)]; ok {
					gotHB = append(gotHB, name)
				}
			}
			slices.Sort(gotHB)
			if wantHB := slices.Sorted(slices.Values(tc.wantHB)); !slices.Equal(gotHB, wantHB) {
				t.Errorf("heartbeats for %v, want %v", gotHB, wantHB)
			}
			for k, v := range m.annotations {
				switch name := nameOfHeartbeat(cas, k); {
				case slices.Contains(ownNames, name):
					if v != now.Format(time.RFC3339) {
						t.Errorf("own heartbeat %s = %q, want now", name, v)
					}
				case v != input[k]:
					t.Errorf("annotation %s = %q, was %q: only own heartbeats may change", k, v, input[k])
				}
			}
			for k := range input {
				if _, ok := m.annotations[k]; !ok && !strings.HasPrefix(k, HeartbeatPrefix) {
					t.Errorf("annotation %s removed: it is no heartbeat", k)
				}
			}
			if !maps.Equal(tc.annotations, input) {
				t.Errorf("the annotations passed in were changed: %v, were %v", tc.annotations, input)
			}
			var wantFP []string
			for _, n := range tc.wantDropped {
				wantFP = append(wantFP, Fingerprint(cas[n]))
			}
			if !slices.Equal(m.dropped, wantFP) {
				t.Errorf("dropped %v, want %v (%v)", m.dropped, wantFP, tc.wantDropped)
			}

			// A second merge at the same time changes nothing: sync writes only
			// when something changed.
			again := mergeBundle(m.bundle, m.annotations, own, now, staleAfter)
			if !bytes.Equal(again.bundle, m.bundle) || !maps.Equal(again.annotations, m.annotations) || len(again.dropped) > 0 {
				t.Errorf("merging the result again changed it: bundle %v, annotations %v, dropped %v", namesIn(t, again.bundle), again.annotations, again.dropped)
			}
		})
	}
}

// nameOfHeartbeat is the name of the CA in cas whose heartbeat annotation is
// k, or "".
func nameOfHeartbeat(cas map[string]*x509.Certificate, k string) string {
	for name, c := range cas {
		if k == HeartbeatPrefix+Fingerprint(c) {
			return name
		}
	}
	return ""
}

func TestFingerprintFitsAnAnnotationName(t *testing.T) {
	fp := Fingerprint(testCA(t, "ca", time.Now().Add(time.Hour)))
	if len(fp) != 32 || len(fp) > 63 {
		t.Errorf("fingerprint %q has %d characters, want 32 (an annotation name has at most 63)", fp, len(fp))
	}
}

func TestStale(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		heartbeat string
		want      bool
	}{
		{"", false},
		{now.Format(time.RFC3339), false},
		{now.Add(-time.Minute).Format(time.RFC3339), false},
		{now.Add(-time.Minute - time.Second).Format(time.RFC3339), true},
		{now.Add(-30 * time.Second).Format(time.RFC3339Nano), false},
		{"2026-12-02 12:00:00", true},
		{"garbage", true},
	} {
		if got := stale(tc.heartbeat, now, time.Minute); got != tc.want {
			t.Errorf("stale(%q) = %v, want %v", tc.heartbeat, got, tc.want)
		}
	}
}
