package notifier

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitKeepsShortTextWhole(t *testing.T) {
	if got := Split("hello\nworld", 100); len(got) != 1 || got[0] != "hello\nworld" {
		t.Fatalf("Split = %q, want the text whole", got)
	}
}

func TestSplitCutsBetweenLinesWithinMax(t *testing.T) {
	var lines []string
	for i := range 100 {
		lines = append(lines, strings.Repeat("x", i%17+1))
	}
	text := strings.Join(lines, "\n")
	parts := Split(text, 64)
	if len(parts) < 2 {
		t.Fatalf("Split made %d parts, want several", len(parts))
	}
	for i, p := range parts {
		if len(p) > 64 {
			t.Fatalf("part %d is %d bytes, want <= 64", i, len(p))
		}
	}
	if got := strings.Join(parts, "\n"); got != text {
		t.Fatalf("parts joined differ from the text:\n%q\n%q", got, text)
	}
}

func TestSplitNeverBreaksACharacter(t *testing.T) {
	text := strings.Repeat("实例已停止", 50) // 3 bytes each, one long line
	for _, max := range []int{4, 5, 7, 100, 101} {
		parts := Split(text, max)
		var b strings.Builder
		for i, p := range parts {
			if !utf8.ValidString(p) {
				t.Fatalf("max %d: part %d is not valid UTF-8: %q", max, i, p)
			}
			if len(p) > max {
				t.Fatalf("max %d: part %d is %d bytes", max, i, len(p))
			}
			b.WriteString(p)
		}
		if b.String() != text {
			t.Fatalf("max %d: parts joined differ from the text", max)
		}
	}
}

func TestSplitRepeatsATableHeader(t *testing.T) {
	text := "title\n\n| name | state |\n|---|---|\n"
	for i := range 30 {
		text += "| web-" + strings.Repeat("0", i%3) + " | STOPPED |\n"
	}
	parts := Split(strings.TrimSuffix(text, "\n"), 120)
	if len(parts) < 3 {
		t.Fatalf("Split made %d parts, want several", len(parts))
	}
	for i, p := range parts[1:] {
		if !strings.HasPrefix(p, "| name | state |\n|---|---|\n") {
			t.Fatalf("part %d does not start with the table header:\n%s", i+1, p)
		}
		if len(p) > 120 {
			t.Fatalf("part %d is %d bytes", i+1, len(p))
		}
	}
}

// TestSplitKeepsATableHeaderWithItsSeparator: a cut never falls between a
// table's header row and its separator, which would leave one part with a
// header that renders as text and the next with a table that has none.
func TestSplitKeepsATableHeaderWithItsSeparator(t *testing.T) {
	intro := strings.Repeat("x", 40) + "\n"
	header, sep := "| name | state |\n", "|---|---|\n"
	text := intro + header + sep + "| web-01 | STOPPED |"
	max := len(intro) + len(header) + 2 // the header fits after the intro, its separator does not
	parts := Split(text, max)
	for i, p := range parts {
		lines := strings.Split(p, "\n")
		for j, l := range lines {
			if l+"\n" == header && (j+1 == len(lines) || lines[j+1]+"\n" != sep) {
				t.Fatalf("part %d has the header without its separator:\n%s", i, p)
			}
		}
		if strings.HasPrefix(p, sep) {
			t.Fatalf("part %d starts with a separator and no header:\n%s", i, p)
		}
	}
}

// TestSplitEncodedMeasuresTheEscapedText: quotes, backslashes, control
// characters, U+2028 and invalid UTF-8 grow when JSON encodes them; each
// part, as encoded, is within max, and the parts make the text.
func TestSplitEncodedMeasuresTheEscapedText(t *testing.T) {
	line := "- \"a\\b\"\t\x01 \u2028 \xff <&> 实例"
	text := strings.TrimSuffix(strings.Repeat(line+"\n", 40), "\n") + strings.Repeat("\"", 300)
	for _, max := range []int{6, 7, 50, 333} {
		parts := SplitEncoded(text, max)
		for i, p := range parts {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(p); err != nil {
				t.Fatal(err)
			}
			if n := b.Len() - len("\"\"\n"); n > max {
				t.Fatalf("max %d: part %d encodes to %d bytes", max, i, n)
			}
		}
		// Lines cut in the middle gain a line break at the cut.
		if got := strings.Join(parts, ""); strings.ReplaceAll(got, "\n", "") != strings.ReplaceAll(text, "\n", "") {
			t.Fatalf("max %d: the parts do not make the text", max)
		}
	}
}
