package notifier

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Defaults of Route.
const (
	DefaultGroupWait = 10 * time.Second
	DefaultGroupMax  = 100
)

// Route says which events go to which sinks, and how they are grouped.
// Routes are tried in order; the first that matches takes an event, unless
// it says Continue, in which case the next ones are tried too. A route that
// Drops sends nothing: the event stops there (quiet hours, noise).
type Route struct {
	// Name identifies the route in logs, metrics and the dedupe memory; a
	// token of [A-Za-z0-9_-].
	Name  string
	Match Match
	// Sinks are the names of the sinks the route's messages go to.
	Sinks    []string
	Drop     bool
	Continue bool
	// GroupWait is how long the route collects events before sending them
	// as one message (0: DefaultGroupWait); GroupMax sends earlier once this
	// many are collected (0: DefaultGroupMax).
	GroupWait time.Duration
	GroupMax  int
	// ShowTags are the instance tags the default template shows.
	ShowTags []string
	// Template, if set, writes the message text instead of the default
	// template, executed over a MessageData.
	Template *template.Template
}

// Match is what an event must be for a route to take it. Every field set
// must match (an empty field matches everything); within a list, any entry
// may match.
type Match struct {
	// Accounts, Regions: globs (path.Match) on the event's target.
	Accounts, Regions []string
	// Instances: globs on the instance ID or its name.
	Instances []string
	// From, To: states (ABSENT included).
	From, To []string
	// Kinds: appeared, state_changed, disappeared.
	Kinds []string
	// Tags: every rule must hold (see ParseTagRule).
	Tags []TagRule
	// Active, if set, limits the route to events observed within it.
	Active *Window
}

// TagRule is one tag condition: KEY=VALUE, KEY (the tag is set) or !KEY
// (it is not).
type TagRule struct {
	Key, Value string
	Op         TagOp
}

// TagOp is a TagRule's test.
type TagOp int

// The tests.
const (
	TagEquals TagOp = iota
	TagPresent
	TagAbsent
)

// ParseTagRule reads KEY=VALUE, KEY or !KEY.
func ParseTagRule(s string) (TagRule, error) {
	switch {
	case strings.HasPrefix(s, "!"):
		if k := s[1:]; k != "" && !strings.Contains(k, "=") {
			return TagRule{Key: k, Op: TagAbsent}, nil
		}
	case strings.Contains(s, "="):
		k, v, _ := strings.Cut(s, "=")
		if k != "" {
			return TagRule{Key: k, Value: v, Op: TagEquals}, nil
		}
	case s != "":
		return TagRule{Key: s, Op: TagPresent}, nil
	}
	return TagRule{}, fmt.Errorf("tag %q: want KEY=VALUE, KEY or !KEY", s)
}

func (r TagRule) holds(e Event) bool {
	v, ok := e.Tag(r.Key)
	switch r.Op {
	case TagPresent:
		return ok
	case TagAbsent:
		return !ok
	}
	return ok && v == r.Value
}

// Matches reports whether e matches. An event without enrichment has no
// name and no tags: a name glob or a KEY rule does not match it, a !KEY
// rule does.
func (m *Match) Matches(e Event) bool {
	return globAny(m.Accounts, e.Target.Account) &&
		globAny(m.Regions, e.Target.Region) &&
		(globAny(m.Instances, e.InstanceID) || (e.Name() != "" && globAny(m.Instances, e.Name()))) &&
		anyOf(m.From, string(e.From)) && anyOf(m.To, string(e.To)) &&
		anyOf(m.Kinds, e.Kind()) &&
		all(m.Tags, func(r TagRule) bool { return r.holds(e) }) &&
		(m.Active == nil || m.Active.Contains(e.ObservedAt))
}

func globAny(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

func anyOf(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }

func all[T any](list []T, f func(T) bool) bool {
	for _, x := range list {
		if !f(x) {
			return false
		}
	}
	return true
}

// Router is an ordered list of routes. It is safe for concurrent use.
type Router struct {
	routes []*Route
}

// NewRouter checks the routes and fills their defaults: each needs a name
// (unique, a token) and sinks unless it drops, each sink named once (a
// sink named twice would be sent each event twice, and the event
// acknowledged after the first); globs must parse; a user template must
// execute over a sample message.
func NewRouter(routes []Route) (*Router, error) {
	r := &Router{}
	var errs []error
	seen := map[string]bool{}
	for i := range routes {
		rt := routes[i]
		where := fmt.Sprintf("route %d (%s)", i, rt.Name)
		if err := watcher.ValidateToken(rt.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: name: %w", where, err))
		} else if seen[rt.Name] {
			errs = append(errs, fmt.Errorf("%s: name given twice", where))
		}
		seen[rt.Name] = true
		if !rt.Drop && len(rt.Sinks) == 0 {
			errs = append(errs, fmt.Errorf("%s: no sinks, and it does not drop", where))
		}
		for j, s := range rt.Sinks {
			if slices.Contains(rt.Sinks[:j], s) {
				errs = append(errs, fmt.Errorf("%s: sink %s named twice", where, s))
			}
		}
		for _, g := range slices.Concat(rt.Match.Accounts, rt.Match.Regions, rt.Match.Instances) {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s: glob %q: %w", where, g, err))
			}
		}
		for _, k := range rt.Match.Kinds {
			if k != KindAppeared && k != KindStateChanged && k != KindDisappeared {
				errs = append(errs, fmt.Errorf("%s: event type %q: want appeared, state_changed or disappeared", where, k))
			}
		}
		if rt.GroupWait <= 0 {
			rt.GroupWait = DefaultGroupWait
		}
		if rt.GroupMax <= 0 {
			rt.GroupMax = DefaultGroupMax
		}
		if rt.Template != nil {
			if err := CheckTemplate(rt.Template); err != nil {
				errs = append(errs, fmt.Errorf("%s: template: %w", where, err))
			}
		}
		r.routes = append(r.routes, &rt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Routes returns the routes, in order, with their defaults.
func (r *Router) Routes() []*Route { return r.routes }

// Route returns the routes that send e, in order: each matching route up
// to the first that does not continue. A dropping route that matches stops
// there and is not returned; dropped is then its name.
func (r *Router) Route(e Event) (send []*Route, dropped string) {
	for _, rt := range r.routes {
		if !rt.Match.Matches(e) {
			continue
		}
		if rt.Drop {
			return send, rt.Name
		}
		send = append(send, rt)
		if !rt.Continue {
			break
		}
	}
	return send, ""
}

// Filter is the narrowest subject filter that holds every event a sending
// route can match: a token of the subject is fixed where every sending
// route names one and the same literal value for it (account, region,
// instance, from, to), else a wildcard.
func (r *Router) Filter(prefix string) string {
	tokens := make([]string, 5)
	for i := range tokens {
		fixed := ""
		for _, rt := range r.routes {
			if rt.Drop {
				continue
			}
			m := rt.Match
			vals := [][]string{m.Accounts, m.Regions, m.Instances, m.From, m.To}[i]
			if len(vals) != 1 || strings.ContainsAny(vals[0], `*?[\`) || watcher.ValidateToken(vals[0]) != nil ||
				(fixed != "" && fixed != vals[0]) {
				fixed = "*"
				break
			}
			fixed = vals[0]
		}
		if fixed == "" {
			fixed = "*"
		}
		tokens[i] = fixed
	}
	// The instances glob also matches names, which are not in the subject.
	tokens[2] = "*"
	for len(tokens) > 0 && tokens[len(tokens)-1] == "*" {
		tokens = tokens[:len(tokens)-1]
	}
	if len(tokens) < 5 {
		tokens = append(tokens, ">")
	}
	return strings.Join(append([]string{prefix, "state"}, tokens...), ".")
}
