package notifier

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// MessageData is what a message template is executed over (the data
// model documented in the README). A route's user template gets the same
// data as the default one.
type MessageData struct {
	// Route is the route's name.
	Route string
	// Title is the default one-line summary, such as "12 instances STOPPED
	// in prod / ap-guangzhou".
	Title string
	// Events is how many events the message covers; Items are the
	// instances, one each, in the order of their first event.
	Events int
	Items  []Item
	// Stale is set for a summary of a backlog older than max_age; ByState
	// then counts its events by the state they went to, and Oldest and
	// Newest bound their observation times.
	Stale          bool
	ByState        []StateCount
	Oldest, Newest time.Time
	// ShowTags are the tags the route asks to show.
	ShowTags []string
}

// Item is one instance in a message: its first From and last To within the
// group, and the states it went through.
type Item struct {
	// Event is the instance's latest event in the group (names, tags and
	// operation come from it).
	Event
	From, To watcher.State
	// Path is every state the instance was seen in, in order: From, ..., To.
	Path []watcher.State
	// Rebooted: it went RUNNING -> REBOOTING -> RUNNING within the group
	// (and through nothing else).
	Rebooted bool
}

// StateCount is a number of events that went to a state.
type StateCount struct {
	State watcher.State
	Count int
}

// Collapse turns a group's events into one item per instance, in the order
// of each instance's first event: an instance that changed several times is
// shown once, from its first state to its last.
func Collapse(events []Event) []Item {
	var items []Item
	index := map[string]int{}
	for _, e := range events {
		key := e.Target.String() + "/" + e.InstanceID
		i, ok := index[key]
		if !ok {
			index[key] = len(items)
			items = append(items, Item{Event: e, From: e.From, To: e.To, Path: []watcher.State{e.From, e.To}})
			continue
		}
		it := &items[i]
		it.Event, it.To = e, e.To
		it.Path = append(it.Path, e.To)
	}
	for i := range items {
		p := items[i].Path
		items[i].Rebooted = slices.Equal(p, []watcher.State{watcher.StateRunning, watcher.StateRebooting, watcher.StateRunning})
	}
	return items
}

// newMessageData is the data of a message about events for route.
func newMessageData(route *Route, events []Event, stale bool) MessageData {
	d := MessageData{Route: route.Name, Events: len(events), Items: Collapse(events), Stale: stale, ShowTags: route.ShowTags}
	counts := map[watcher.State]int{}
	for _, e := range events {
		counts[e.To]++
		if d.Oldest.IsZero() || e.ObservedAt.Before(d.Oldest) {
			d.Oldest = e.ObservedAt
		}
		if e.ObservedAt.After(d.Newest) {
			d.Newest = e.ObservedAt
		}
	}
	for st, n := range counts {
		d.ByState = append(d.ByState, StateCount{st, n})
	}
	sort.Slice(d.ByState, func(i, j int) bool {
		a, b := d.ByState[i], d.ByState[j]
		return a.Count > b.Count || (a.Count == b.Count && a.State < b.State)
	})
	d.Title = title(d)
	return d
}

// title is the one-line summary of d.
func title(d MessageData) string {
	where := targets(d.Items)
	if d.Stale {
		return fmt.Sprintf("While the notifier was behind: %d transitions in %s", d.Events, where)
	}
	n := len(d.Items)
	noun := "instances"
	if n == 1 {
		noun = "instance"
	}
	rebooted := all(d.Items, func(it Item) bool { return it.Rebooted })
	to := d.Items[0].To
	sameTo := all(d.Items, func(it Item) bool { return it.To == to && !it.Rebooted })
	switch {
	case rebooted:
		return fmt.Sprintf("%d %s rebooted in %s", n, noun, where)
	case sameTo && to == watcher.Absent:
		return fmt.Sprintf("%d %s gone in %s", n, noun, where)
	case sameTo:
		return fmt.Sprintf("%d %s %s in %s", n, noun, to, where)
	}
	return fmt.Sprintf("%d %s changed state in %s", n, noun, where)
}

// targets names the account/region of the items: one, two, or a count.
func targets(items []Item) string {
	var seen []string
	for _, it := range items {
		t := it.Target.Account + " / " + it.Target.Region
		if !slices.Contains(seen, t) {
			seen = append(seen, t)
		}
	}
	if len(seen) <= 2 {
		return strings.Join(seen, ", ")
	}
	return fmt.Sprintf("%d regions", len(seen))
}

// Render writes the message about events for route in style, within
// maxBytes: the route's template if it has one (split later if too long),
// else the default one, whose list of instances ends with "... and N more"
// where the rest would not fit.
func Render(route *Route, style Style, maxBytes int, events []Event, stale bool) (Message, error) {
	d := newMessageData(route, events, stale)
	m := Message{Title: d.Title, Events: events}
	if route.Template != nil {
		var b bytes.Buffer
		if err := route.Template.Execute(&b, d); err != nil {
			return m, fmt.Errorf("route %s: template: %w", route.Name, err)
		}
		m.Text = b.String()
		return m, nil
	}
	m.Text = renderDefault(d, style, maxBytes)
	return m, nil
}

// renderDefault is the default template: a bold title, then one line per
// instance, or for a stale backlog the counts by state.
func renderDefault(d MessageData, s Style, maxBytes int) string {
	var b strings.Builder
	b.WriteString(s.Bold(s.Escape(d.Title)))
	b.WriteString("\n")
	if d.Stale {
		fmt.Fprintf(&b, "observed %s to %s\n", d.Oldest.UTC().Format(time.DateTime), d.Newest.UTC().Format(time.DateTime+" UTC"))
		for _, c := range d.ByState {
			fmt.Fprintf(&b, "- %s: %d\n", s.State(c.State), c.Count)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	for i, it := range d.Items {
		line := itemLine(it, s, d.ShowTags) + "\n"
		more := len(d.Items) - i
		tail := fmt.Sprintf("... and %d more", more)
		if b.Len()+len(line) > maxBytes || (more > 1 && b.Len()+len(line)+len(tail) > maxBytes) {
			b.WriteString(tail)
			return b.String()
		}
		b.WriteString(line)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// itemLine is one instance: "- web-01 `ins-1` RUNNING → STOPPED env=prod
// (StopInstances by ops-bot)".
func itemLine(it Item, s Style, tags []string) string {
	var b strings.Builder
	b.WriteString("- ")
	if n := it.Name(); n != "" {
		b.WriteString(s.Bold(s.Escape(n)) + " ")
	}
	b.WriteString(s.Code(s.Escape(it.InstanceID)))
	b.WriteString(" ")
	switch {
	case it.Rebooted:
		b.WriteString("rebooted (" + s.State(watcher.StateRunning) + ")")
	case len(it.Path) > 2:
		b.WriteString(s.State(it.From) + " → … → " + s.State(it.To) + fmt.Sprintf(" (%d changes)", len(it.Path)-1))
	default:
		b.WriteString(s.State(it.From) + " → " + s.State(it.To))
	}
	for _, k := range tags {
		if v, ok := it.Tag(k); ok {
			b.WriteString(" " + s.Escape(k+"="+v))
		}
	}
	if op := it.Operation; op != nil && op.Name != "" {
		b.WriteString(" (" + s.Escape(op.Name))
		if a := it.Actor; a != nil && a.Username != "" {
			b.WriteString(" by " + s.Escape(a.Username))
		}
		if op.State != "" && op.State != "SUCCESS" {
			b.WriteString(", " + s.Escape(op.State))
		}
		b.WriteString(")")
	}
	return b.String()
}

// TemplateFuncs are the functions a user template may call besides Go's
// own: state (a state in the platform-neutral form), join.
var templateFuncs = template.FuncMap{
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"tag": func(it Item, key string) string {
		v, _ := it.Tag(key)
		return v
	},
}

// ParseTemplate parses a user template for a route's messages (Go
// text/template over MessageData, with the functions join, upper and tag).
func ParseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

// SampleEvents are the events a user template is tried on at start-up: an
// enriched reboot and a bare stop.
func SampleEvents() []Event {
	t := time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	inst := &watcher.Instance{Name: "web-01", Zone: "ap-guangzhou-3", InstanceType: "S5.MEDIUM4",
		PrivateIPs: []string{"10.0.0.12"}, Tags: []watcher.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "web"}}}
	op := &watcher.Operation{Name: "RebootInstances", State: "SUCCESS", RequestID: "6e1c"}
	actor := &watcher.Actor{Username: "ops-bot"}
	return []Event{
		{Event: watcher.Event{ID: "sample-1", Target: tgt, InstanceID: "ins-r8hr2upy", From: watcher.StateRunning, To: watcher.StateRebooting, Sequence: 7, ObservedAt: t, Instance: inst, Operation: op, Actor: actor}},
		{Event: watcher.Event{ID: "sample-2", Target: tgt, InstanceID: "ins-r8hr2upy", From: watcher.StateRebooting, To: watcher.StateRunning, Sequence: 8, ObservedAt: t.Add(30 * time.Second), Instance: inst, Operation: op, Actor: actor}},
		{Event: watcher.Event{ID: "sample-3", Target: tgt, InstanceID: "ins-0000bare", From: watcher.StateRunning, To: watcher.StateStopped, Sequence: 3, ObservedAt: t}},
	}
}

// CheckTemplate executes t over the sample events, fresh and stale.
func CheckTemplate(t *template.Template) error {
	rt := &Route{Name: "sample"}
	for _, stale := range []bool{false, true} {
		if err := t.Execute(&bytes.Buffer{}, newMessageData(rt, SampleEvents(), stale)); err != nil {
			return err
		}
	}
	return nil
}
