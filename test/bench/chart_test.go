package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestLatencyChartIsWellFormedSVGWithABarPerPercentile(t *testing.T) {
	results := []result{
		{Scenario: "drain", Subject: "ceiling", PerSecond: 900},
		{Scenario: "csr-burst", Subject: "ceiling", P50Millis: 0.4, P95Millis: 54, P99Millis: 71},
		{Scenario: "csr-burst-rsa2048", Subject: "ceiling", P50Millis: 21, P95Millis: 54, P99Millis: 71},
		{Scenario: "idle", Subject: "ceiling", P50Millis: 16, P95Millis: 36, P99Millis: 57},
		{Scenario: "csr-burst", Subject: "kube-controller-manager <defaults> & co", P50Millis: 10828, P95Millis: 21696, P99Millis: 22673},
	}
	svg := latencyChart(results)
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	bars := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			bars++
		}
	}
	// A background, three legend swatches, 3+3+2 bars for the ceiling, 3 for kube-controller-manager.
	if want := 1 + 3 + 8 + 3; bars != want {
		t.Errorf("got %d rects, want %d", bars, want)
	}
	if !strings.Contains(string(svg), ">100 s<") {
		t.Errorf("axis does not reach 100 s for a 22.7 s p99:\n%s", svg)
	}
}
