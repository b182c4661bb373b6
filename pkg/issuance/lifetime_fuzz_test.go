package issuance

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-dev/signet/pkg/wire"
)

// FuzzRequestedDuration: a CSR's request-duration annotation and
// spec.expirationSeconds, read as the CSR edge reads them (wire) and judged
// by the policy (Lifetime), give cert-manager's answer, never a panic.
// Seeds: test/fuzz/issuance/FuzzRequestedDuration.
func FuzzRequestedDuration(f *testing.F) {
	for _, d := range []string{"2160h", "1h", "10m", "9m59s", "", "forever", "-1h", "1h30m", ".5h", "99999999999h", "9223372036854775807ns", "1µs"} {
		f.Add(d, true, int32(0), false)
	}
	f.Add("", false, int32(3600), true)
	f.Add("", false, int32(599), true)
	f.Add("", false, int32(0), false)

	f.Fuzz(func(t *testing.T, annotation string, hasAnnotation bool, expiration int32, hasExpiry bool) {
		annotations := map[string]string{}
		if hasAnnotation {
			annotations[wire.AnnotationRequestDuration] = annotation
		}
		var expiry *int32
		if hasExpiry {
			expiry = &expiration
		}
		asked, parseErr := wire.ParseRequestAnnotations(annotations, expiry)
		var (
			got    time.Duration
			failed *Failed
		)
		if parseErr == nil {
			got, failed = Policy{}.Lifetime(asked.Duration)
		}

		// The model: cert-manager's rule, plus the length bound.
		var want time.Duration
		wantParseError, wantInvalid := false, false
		switch {
		case hasAnnotation:
			d, perr := time.ParseDuration(annotation)
			wantParseError = perr != nil || len(annotation) > 64
			want = d
		case hasExpiry:
			want = time.Duration(expiration) * time.Second
		default:
			want = wire.DefaultDuration
		}
		wantInvalid = !wantParseError && want < wire.MinDuration

		switch {
		case wantParseError:
			if parseErr == nil || len(parseErr.Error()) > 300 {
				t.Fatalf("(%q, %v, %d, %v): parse error %v, want a short one", annotation, hasAnnotation, expiration, hasExpiry, parseErr)
			}
		case wantInvalid:
			if parseErr != nil || failed == nil || failed.Reason != wire.ReasonInvalidDuration || len(failed.Message) > 300 {
				t.Fatalf("(%q, %v, %d, %v) = %s, %v, %+v; want %s", annotation, hasAnnotation, expiration, hasExpiry, got, parseErr, failed, wire.ReasonInvalidDuration)
			}
		default:
			if parseErr != nil || failed != nil || got != want {
				t.Fatalf("(%q, %v, %d, %v) = %s, %v, %+v; want %s", annotation, hasAnnotation, expiration, hasExpiry, got, parseErr, failed, want)
			}
		}
	})
}

// TestSeedCorpusIsReached: plain go test (make test) runs the seed files of
// FuzzRequestedDuration only through the testdata/fuzz link to test/fuzz; a
// checkout that lost the link would run fewer seeds without a word.
func TestSeedCorpusIsReached(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRequestedDuration")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("no seed files in %s (%v): the link testdata/fuzz -> ../../test/fuzz/issuance is missing or broken", dir, err)
	}
}
