package cvm

import "testing"

// TestSameOrderNeedsBothAPIsToSeeTheFleet: an empty or short page 0 from
// DescribeInstances is not "the same order" (found by review: it passed
// the probe, and mixed scans then lost the pages it answered empty), and
// TotalCounts of different fleets are not close.
func TestSameOrderNeedsBothAPIsToSeeTheFleet(t *testing.T) {
	a := []string{"ins-00000001", "ins-00000002", "ins-00000003"}
	for _, tc := range []struct {
		name string
		b    []string
		want bool
	}{
		{"empty answer", nil, false},
		{"a third of it", a[:1], false},
		{"the same", a, true},
		{"reversed", []string{a[2], a[1], a[0]}, false},
	} {
		if got := sameOrder(a, tc.b); got != tc.want {
			t.Errorf("%s: sameOrder = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !sameOrder(nil, nil) {
		t.Error("two empty pages (an empty fleet) do not agree")
	}
	for _, tc := range []struct {
		a, b int
		want bool
	}{{1000, 1000, true}, {1000, 1050, true}, {1000, 0, false}, {100_000, 50_000, false}, {3, 60, true}, {0, 0, true}} {
		if got := closeTotals(tc.a, tc.b); got != tc.want {
			t.Errorf("closeTotals(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
