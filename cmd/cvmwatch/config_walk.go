package main

import (
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	errEOF       = io.EOF
	typeOfConfig = reflect.TypeFor[Config]()
	envRef       = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	lineRef      = regexp.MustCompile(`^line (\d+): `)
)

// walker checks a YAML tree against the Config type before decoding: every
// mapping key must be a known field (so a typo is an error naming its path),
// and ${VAR} in scalar values is expanded from the environment. Expanding
// parsed scalars, never the raw text, means a variable's value cannot change
// the file's structure. It also records the keys given a value (written),
// so that a zero written in the file is told from a key left out.
//
// Unknown keys are found here rather than by the decoder's strict mode
// (yaml.Decoder.KnownFields), for three reasons. The tree is decoded after
// expansion, with yaml.Node.Decode, which has no strict mode: KnownFields
// exists only on a Decoder reading bytes. Its error, "line 7: field
// intervall not found in type main.PollConfig", names neither the key's
// path nor the nearest known key, and a line number cannot give them back:
// in flow style (http: {listen: x, lisen: y}) one line holds several keys.
// And the walk is needed anyway, for expansion, secrets and aliases.
// FuzzConfigWalk holds the walk to the decoder's strict mode: no file it
// accepts has a key KnownFields(true) refuses.
type walker struct {
	lookup func(string) (string, bool)
	// optional says of a key whether it may be left out when a variable
	// it uses is unset (nil: no key may).
	optional func(key string) bool
	lines    map[int]string // line -> key path, to place decoder errors
	// rawValues keeps scalars' text before expansion; literalSecrets names
	// the secrets written into the file rather than taken from the
	// environment.
	rawValues      map[*yaml.Node]string
	literalSecrets []string
	// written holds the path of every scalar given a value: not null, not
	// an empty string (see given).
	written keySet
}

// raw returns a scalar's value as written in the file.
func (w *walker) raw(n *yaml.Node) string {
	if v, ok := w.rawValues[n]; ok {
		return v
	}
	return n.Value
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, problems *configErrors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		*problems = append(*problems, fmt.Errorf("%s: YAML aliases are not supported", orRoot(path)))
		return
	}
	if _, ok := w.lines[n.Line]; !ok {
		w.lines[n.Line] = path
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null: the key's zero value, like leaving it out
	}
	switch {
	case isCustomScalar(t):
		switch n.Kind {
		case yaml.ScalarNode:
			w.expand(n, path, problems)
		case yaml.SequenceNode:
			for i, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					*problems = append(*problems, fmt.Errorf("%s[%d]: want a single value", path, i))
					return
				}
				w.expand(item, fmt.Sprintf("%s[%d]", path, i), problems)
			}
		default:
			*problems = append(*problems, fmt.Errorf("%s: want a single value", orRoot(path)))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			*problems = append(*problems, fmt.Errorf("%s: %v", orRoot(path), err))
		}
		w.given(n, t, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*problems = append(*problems, fmt.Errorf("%s: want a mapping of keys", orRoot(path)))
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := join(path, key.Value)
			w.lines[key.Line] = p
			if seen[key.Value] {
				*problems = append(*problems, fmt.Errorf("%s: key given twice", p))
				continue
			}
			seen[key.Value] = true
			ft, ok := fields[key.Value]
			if !ok {
				*problems = append(*problems, fmt.Errorf("%s: unknown key%s", p, suggest(key.Value, fields)))
				continue
			}
			w.walk(val, ft, p, problems)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*problems = append(*problems, fmt.Errorf("%s: want a list", orRoot(path)))
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), path+"["+strconv.Itoa(i)+"]", problems)
		}
	case n.Kind == yaml.ScalarNode:
		w.expand(n, path, problems)
		if what := w.literalSecret(n, t, path); what != "" {
			w.literalSecrets = append(w.literalSecrets, what)
		}
		w.given(n, t, path)
	default:
		*problems = append(*problems, fmt.Errorf("%s: want a single value", orRoot(path)))
	}
}

// given records path as written unless its (expanded) scalar n is null.
// An empty string is made null, so that it leaves a string key its default
// (as it always did: nats.url: "" is the embedded server); a number or a
// duration written, zero included, is taken as written.
func (w *walker) given(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.ScalarNode && n.Value == "" && t.Kind() == reflect.String {
		n.Tag, n.Style = "!!null", 0
	}
	if n.ShortTag() == "!!null" {
		return
	}
	if w.written == nil {
		w.written = keySet{}
	}
	w.written[path] = true
}

// natsURLKey is the one plain string that may hold secrets: the user info
// of its servers.
const natsURLKey = "nats.url"

// literalSecret names the secret a scalar holds written into the file, not
// taken from ${VAR}: a Secret's value, or a password (or token) in the user
// info of a nats.url server. It returns "" if there is none. As for a
// Secret, a password that uses a variable counts as taken from the
// environment.
func (w *walker) literalSecret(n *yaml.Node, t reflect.Type, path string) string {
	raw := w.raw(n)
	switch {
	case t == reflect.TypeFor[Secret]():
		if n.Value != "" && !strings.Contains(raw, "${") {
			return path
		}
	case path == natsURLKey:
		for _, u := range splitURLs(raw) {
			if s := urlSecret(u); s != "" && !strings.Contains(s, "${") {
				return "a password in " + path
			}
		}
	}
	return ""
}

// expand replaces ${VAR} in a scalar. An unset variable is an error: a
// silently empty secret or region is worse than a refusal. Only where
// w.optional allows it, the key is left out instead, as if not written.
func (w *walker) expand(n *yaml.Node, path string, problems *configErrors) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	if w.rawValues == nil {
		w.rawValues = map[*yaml.Node]string{}
	}
	w.rawValues[n] = n.Value
	unset := false
	n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := w.lookup(name)
		switch {
		case ok:
		case w.optional != nil && w.optional(path):
			unset = true
		default:
			*problems = append(*problems, fmt.Errorf("%s: environment variable %s is not set", orRoot(path), name))
		}
		return v
	})
	if unset {
		// A null decodes to the zero value, never to a half-expanded one.
		n.Tag, n.Style, n.Value = "!!null", 0, ""
		return
	}
	// Let a plain scalar be typed by its expanded value ("${RATE}" -> 35),
	// as if it had been written there; a string field still gets the text.
	if n.Style == 0 {
		n.Tag = ""
	}
}

// quotedValue is the value the YAML decoder quotes in a type error
// ("cannot unmarshal !!str `abc` into int").
var quotedValue = regexp.MustCompile("(?s)`.*` into ")

// locate rewrites a decoder message "line N: ..." to name the key at fault.
// The value the decoder quotes is dropped: a value under the wrong key may
// be a secret (a key pasted one line off), and the key and line find it.
func (w *walker) locate(msg string) error {
	msg = quotedValue.ReplaceAllString(msg, "into ") // from the first backquote to the last: the value may hold some
	m := lineRef.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%s", msg)
	}
	line, _ := strconv.Atoi(m[1])
	rest := strings.TrimPrefix(msg, m[0])
	if p, ok := w.lines[line]; ok && p != "" {
		return fmt.Errorf("%s: %s (line %d)", p, rest, line)
	}
	return fmt.Errorf("line %d: %s", line, rest)
}

func isCustomScalar(t reflect.Type) bool {
	_, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return ok
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = f.Type
		}
	}
	return out
}

// suggest names the known key closest to an unknown one.
func suggest(key string, fields map[string]reflect.Type) string {
	var names []string
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
