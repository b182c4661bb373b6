package issuers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseSignerName: parsing never panics, and whatever parses is a name
// that SignerName prints back identically, with the parts cert-manager's rules give.
func FuzzParseSignerName(f *testing.F) {
	for _, s := range []string{
		"issuers.cert-manager.io/ns.name", "issuers.cert-manager.io/ns.a.b", "clusterissuers.cert-manager.io/x",
		"issuers.cert-manager.io/", "issuers.cert-manager.io/a/b", "kubernetes.io/kube-apiserver-client", "", "/", ".",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok := ParseSignerName(s)
		if !ok {
			return
		}
		if got := ref.SignerName(); got != s {
			t.Fatalf("ParseSignerName(%q) = %+v, which prints as %q", s, ref, got)
		}
		if ref.Name == "" || strings.Contains(ref.Name, "/") {
			t.Fatalf("ParseSignerName(%q) gave name %q", s, ref.Name)
		}
		if ref.Kind == KindIssuer && (ref.Namespace == "" || strings.Contains(ref.Namespace, ".")) {
			t.Fatalf("ParseSignerName(%q) gave namespace %q", s, ref.Namespace)
		}
	})
}

// TestSeedCorpusIsReached: plain go test (make test) runs the seed files of
// FuzzParseSignerName only through the testdata/fuzz link to test/fuzz; a
// checkout that lost the link would run fewer seeds without a word.
func TestSeedCorpusIsReached(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseSignerName")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("no seed files in %s (%v): the link testdata/fuzz -> ../../test/fuzz/issuers is missing or broken", dir, err)
	}
}
