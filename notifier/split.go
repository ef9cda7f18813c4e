package notifier

import (
	"strings"
	"unicode/utf8"
)

// Split cuts text into parts of at most max bytes each, for a platform that
// refuses longer messages. It cuts between lines, never between a table's
// header row and its separator; a markdown table cut in two has its header
// row and separator repeated at the top of the next part, so
// that each part renders as a table; a single line longer than a part is cut
// at a character boundary, never inside a multi-byte character. Joining the
// parts (less the repeated headers) gives text back. A max too small for a
// character (below 4) is taken as 4.
func Split(text string, max int) []string {
	max = maxInt(max, utf8.UTFMax)
	if len(text) <= max {
		return []string{text}
	}
	var parts []string
	var cur strings.Builder
	var header []string // the current table's header and separator rows
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, strings.TrimSuffix(cur.String(), "\n"))
			cur.Reset()
		}
	}
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		row := isTableRow(line)
		need := len(line)
		if !row {
			header = nil
		} else if header == nil && i+1 < len(lines) && isTableSeparator(lines[i+1]) {
			header = []string{line, lines[i+1]}
			need += len(lines[i+1]) // a header row goes with its separator
		}
		if cur.Len()+need > max {
			flush()
			if row && header != nil && header[0] != line && header[1] != line {
				if hl := len(header[0]) + len(header[1]); hl+len(line) <= max {
					cur.WriteString(header[0])
					cur.WriteString(header[1])
				}
			}
		}
		for len(line) > max-cur.Len() && cur.Len() == 0 {
			cut := cutAt(line, max)
			parts = append(parts, strings.TrimSuffix(line[:cut], "\n"))
			line = line[cut:]
		}
		cur.WriteString(line)
	}
	flush()
	return parts
}

// cutAt is the largest index <= n that starts a character of s.
func cutAt(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// truncateUTF8 is s cut to at most n bytes at a character boundary.
func truncateUTF8(s string, n int) string { return s[:cutAt(s, n)] }

func isTableRow(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), "|")
}

func isTableSeparator(line string) bool {
	t := strings.TrimSpace(line)
	return strings.HasPrefix(t, "|") && strings.Trim(t, "|-: ") == ""
}

func maxInt(a, b int) int { return max(a, b) }
