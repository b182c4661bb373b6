package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chartRows are the scenarios latency.svg shows, and their labels.
var chartRows = map[string]string{"csr-burst": "burst, P-256 keys", "csr-burst-rsa2048": "burst, RSA-2048 keys", "csr-burst-distinct": "burst, distinct requesters", "idle": "idle (one at a time)"}

// latencyChart draws each subject's burst p50/p95/p99 and idle p50/p99,
// approval → issued, as horizontal bars on a log-scale millisecond axis.
func latencyChart(results []result) []byte {
	const left, width, barH, labelX = 190.0, 600.0, 9.0, 24.0
	colors := [3]string{"#4c78a8", "#f58518", "#e45756"}
	var subjects []string
	rows := map[string][]result{}
	hi := 10.0
	for _, r := range results {
		if chartRows[r.Scenario] == "" {
			continue
		}
		if rows[r.Subject] == nil {
			subjects = append(subjects, r.Subject)
		}
		rows[r.Subject] = append(rows[r.Subject], r)
		hi = max(hi, r.P99Millis)
	}
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(v float64) float64 { return left + width*math.Log10(max(v, 1))/math.Log10(hi) }

	var b strings.Builder
	y := 44.0
	for _, s := range subjects {
		fmt.Fprintf(&b, "<text x=\"8\" y=\"%.0f\" font-weight=\"bold\">%s</text>\n", y+10, html.EscapeString(s))
		y += 16
		for _, r := range rows[s] {
			fmt.Fprintf(&b, "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", labelX, y+18, chartRows[r.Scenario])
			for i, v := range [3]float64{r.P50Millis, r.P95Millis, r.P99Millis} {
				if r.Scenario == "idle" && i == 1 {
					continue
				}
				by := y + float64(i)*(barH+1)
				fmt.Fprintf(&b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\"/>\n", left, by, x(v)-left, barH, colors[i])
				fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"9\">%s</text>\n", x(v)+3, by+8, millis(v))
			}
			y += 3*(barH+1) + 8
		}
		y += 6
	}
	var axis strings.Builder
	for d := 1.0; d <= hi; d *= 10 {
		fmt.Fprintf(&axis, "<line x1=\"%.1f\" y1=\"36\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ccc\"/>\n", x(d), x(d), y)
		fmt.Fprintf(&axis, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x(d), y+14, millis(d))
	}
	var legend strings.Builder
	fmt.Fprintf(&legend, "<text x=\"8\" y=\"18\" font-weight=\"bold\">approval → certificate issued (log scale)</text>\n")
	for i, name := range []string{"p50", "p95", "p99"} {
		lx := left + float64(i)*70
		fmt.Fprintf(&legend, "<rect x=\"%.0f\" y=\"24\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"33\">%s</text>\n", lx, colors[i], lx+14, name)
	}
	return fmt.Appendf(nil, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"11\">\n"+
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n%s%s%s</svg>\n", left+width+70, y+24, axis.String(), legend.String(), b.String())
}

// millis formats a duration in milliseconds for a chart label.
func millis(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.3g s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.2g ms", v)
	}
}
