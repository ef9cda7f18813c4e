package main

import (
	"fmt"
	"path"
	"strings"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// eventFilter holds the filters tail applies to an event's enrichment,
// which is not in the subject: tag:KEY=VALUE (the tag KEY has exactly
// VALUE) and name=GLOB (the instance name matches the shell pattern GLOB,
// see path.Match). All must match; an event without data.instance matches
// none of them.
type eventFilter struct {
	tags map[string]string
	name string
}

// splitFilters separates the enrichment filters from the subject ones.
func splitFilters(args []string) (subject []string, f eventFilter, err error) {
	for _, arg := range args {
		key, value, ok := strings.Cut(arg, "=")
		switch {
		case ok && strings.HasPrefix(key, "tag:"):
			k := strings.TrimPrefix(key, "tag:")
			if k == "" {
				return nil, f, fmt.Errorf("filter %s: want tag:KEY=VALUE with a KEY", watcher.Quote(arg))
			}
			if f.tags == nil {
				f.tags = map[string]string{}
			}
			if _, dup := f.tags[k]; dup {
				return nil, f, fmt.Errorf("filter %s: tag %s given twice", watcher.Quote(arg), watcher.Quote(k))
			}
			f.tags[k] = value
		case ok && key == "name":
			if f.name != "" {
				return nil, f, fmt.Errorf("filter %s: name given twice", watcher.Quote(arg))
			}
			if _, err := path.Match(value, ""); err != nil || value == "" {
				return nil, f, fmt.Errorf("filter %s: not a pattern (use * and ? as in a shell)", watcher.Quote(arg))
			}
			f.name = value
		default:
			subject = append(subject, arg)
		}
	}
	return subject, f, nil
}

// active reports whether the filter selects anything at all.
func (f eventFilter) active() bool { return f.name != "" || len(f.tags) > 0 }

// match reports whether e passes every enrichment filter.
func (f eventFilter) match(e watcher.Event) bool {
	if !f.active() {
		return true
	}
	if e.Instance == nil {
		return false
	}
	if f.name != "" {
		if ok, _ := path.Match(f.name, e.Instance.Name); !ok {
			return false
		}
	}
	for k, v := range f.tags {
		found := false
		for _, t := range e.Instance.Tags {
			if t.Key == k && t.Value == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// maxLineTags is the most tags an event line shows beside the name.
const maxLineTags = 2

// identity renders the instance's name and first tags for a line, e.g.
// `web-01 [env=prod team=web +3]`, with every byte a terminal could act on
// escaped; "" without data.instance.
func identity(in *watcher.Instance) string {
	if in == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(printable(in.Name))
	if len(in.Tags) > 0 {
		b.WriteString(" [")
		for i, t := range in.Tags[:min(len(in.Tags), maxLineTags)] {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(printable(t.Key) + "=" + printable(t.Value))
		}
		if n := len(in.Tags) - maxLineTags; n > 0 {
			fmt.Fprintf(&b, " +%d", n)
		}
		b.WriteByte(']')
	}
	return b.String()
}

// operation renders data.operation for a line, e.g. `by StopInstances
// SUCCESS (req 6e1c...)`; "" without one.
func operation(op *watcher.Operation) string {
	if op == nil {
		return ""
	}
	s := "by " + printable(op.Name) + " " + printable(op.State) + " (request " + printable(op.RequestID) + ")"
	if op.Error != "" {
		s += ": " + printable(op.Error)
	}
	return s
}

// actor renders data.operation.actor: "by user ops-bot from 203.0.113.7".
func actor(a *watcher.Actor) string {
	if a == nil {
		return ""
	}
	s := "by user " + printable(a.Username)
	if a.SourceIP != "" {
		s += " from " + printable(a.SourceIP)
	}
	return s
}

// printable bounds a value from the API to 64 bytes and escapes control
// characters and anything not printable (a terminal escape, a right-to-left
// override), keeping ordinary text as it is.
func printable(s string) string {
	const max = 64
	cut := len(s) > max
	if cut {
		s = s[:max]
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	if cut {
		b.WriteString("...")
	}
	return b.String()
}
