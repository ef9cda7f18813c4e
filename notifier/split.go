package notifier

import (
	"bytes"
	"encoding/json"
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
	return splitSized(text, maxInt(max, utf8.UTFMax), func(s string) int { return len(s) })
}

// maxEscapedRune is the most one character takes in JSON: "\u2028", or
// "\ufffd" for a byte of invalid UTF-8.
const maxEscapedRune = 6

// SplitEncoded is Split with each part's size taken as encoding/json
// writes it inside a string (quotes, backslashes and control characters
// escaped, HTML characters not): for a platform that bounds the request
// body rather than the text. A max below 6 is taken as 6.
func SplitEncoded(text string, max int) []string {
	return splitSized(text, maxInt(max, maxEscapedRune), jsonLen)
}

// jsonLen is the length of s as jsonRequest's encoder writes it, without
// the quotes. It is additive: jsonLen(a+b) = jsonLen(a) + jsonLen(b), as
// encoding/json escapes character by character.
func jsonLen(s string) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return b.Len() - len(`""`+"\n")
}

// splitSized is Split with size measuring a part: additive over
// concatenation, and max at least the size of any one character.
func splitSized(text string, max int, size func(string) int) []string {
	if size(text) <= max {
		return []string{text}
	}
	var parts []string
	var cur strings.Builder
	used := 0           // size(cur)
	var header []string // the current table's header and separator rows
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, strings.TrimSuffix(cur.String(), "\n"))
			cur.Reset()
			used = 0
		}
	}
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		row := isTableRow(line)
		need := size(line)
		if !row {
			header = nil
		} else if header == nil && i+1 < len(lines) && isTableSeparator(lines[i+1]) {
			header = []string{line, lines[i+1]}
			need += size(lines[i+1]) // a header row goes with its separator
		}
		if used+need > max {
			flush()
			if row && header != nil && header[0] != line && header[1] != line {
				if hl := size(header[0]) + size(header[1]); hl+size(line) <= max {
					cur.WriteString(header[0])
					cur.WriteString(header[1])
					used += hl
				}
			}
		}
		for used == 0 && size(line) > max {
			cut := cutSized(line, max, size)
			parts = append(parts, strings.TrimSuffix(line[:cut], "\n"))
			line = line[cut:]
		}
		cur.WriteString(line)
		used += size(line)
	}
	flush()
	return parts
}

// cutSized is the largest index of s that starts a character and whose
// prefix is at most n in size; at least the first character.
func cutSized(s string, n int, size func(string) int) int {
	i, used := 0, 0
	for i < len(s) {
		_, w := utf8.DecodeRuneInString(s[i:])
		c := size(s[i : i+w])
		if i > 0 && used+c > n {
			break
		}
		i, used = i+w, used+c
	}
	return i
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
