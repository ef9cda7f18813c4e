package main

import (
	"net/url"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/cvmwatch/cvmwatch/notifier"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// NotifyConfig is the chat notifier (`cvmwatch notify`, or inside `cvmwatch
// run` when the section has routes): sinks are the chat rooms, routes say
// which events go where. Left out, nothing is notified.
type NotifyConfig struct {
	// Durable names the JetStream consumer; its position survives restarts.
	Durable string `yaml:"durable"`
	// GroupWait and GroupMax are every route's grouping unless it sets its
	// own.
	GroupWait Duration `yaml:"group_wait"`
	GroupMax  int      `yaml:"group_max"`
	// MaxAge: events older than this when read become one summary.
	MaxAge Duration `yaml:"max_age"`
	// DedupeHorizon is how long sent event ids are remembered (a KV bucket).
	DedupeHorizon Duration `yaml:"dedupe_horizon"`
	// GiveUpAfter bounds the retries of one message.
	GiveUpAfter Duration      `yaml:"give_up_after"`
	Sinks       []SinkConfig  `yaml:"sinks"`
	Routes      []RouteConfig `yaml:"routes"`
}

// SinkConfig is one chat room's webhook.
type SinkConfig struct {
	Name string `yaml:"name"`
	// Type is wecom, dingtalk, feishu, slack or webhook.
	Type string `yaml:"type"`
	// URL is the webhook's URL, which is itself a secret for every type.
	URL Secret `yaml:"url"`
	// Secret signs requests (dingtalk, feishu, webhook).
	Secret Secret `yaml:"secret"`
}

// RouteConfig is one route, tried in order.
type RouteConfig struct {
	Name      string      `yaml:"name"`
	Match     MatchConfig `yaml:"match"`
	Sinks     []string    `yaml:"sinks"`
	Continue  bool        `yaml:"continue"`
	Drop      bool        `yaml:"drop"`
	GroupWait Duration    `yaml:"group_wait,omitempty"`
	GroupMax  int         `yaml:"group_max,omitempty"`
	ShowTags  []string    `yaml:"show_tags"`
	// Template is a Go text/template over notifier.MessageData.
	Template string `yaml:"template"`
}

// MatchConfig is what a route takes; every key given must match.
type MatchConfig struct {
	Accounts  []string `yaml:"accounts"`
	Regions   []string `yaml:"regions"`
	Instances []string `yaml:"instances"`
	From      []string `yaml:"from"`
	To        []string `yaml:"to"`
	Types     []string `yaml:"types"`
	// Tags are KEY=VALUE, KEY (set) or !KEY (not set).
	Tags   []string      `yaml:"tags"`
	Active *WindowConfig `yaml:"active,omitempty"`
}

// WindowConfig is when a route applies: hours "22:00-08:00", days
// "mon-fri" (empty: all), an IANA time zone (empty: UTC).
type WindowConfig struct {
	Hours    string `yaml:"hours"`
	Days     string `yaml:"days"`
	Timezone string `yaml:"timezone"`
}

// The notify section's defaults, which the README documents.
const (
	defaultNotifyDurable = "cvmwatch-notify"
	defaultDedupeHorizon = 24 * time.Hour
)

// defaultNotify is the notify section of a file that leaves it out.
func defaultNotify() NotifyConfig {
	return NotifyConfig{
		Durable:       defaultNotifyDurable,
		GroupWait:     Duration(notifier.DefaultGroupWait),
		GroupMax:      notifier.DefaultGroupMax,
		MaxAge:        Duration(notifier.DefaultMaxAge),
		DedupeHorizon: Duration(defaultDedupeHorizon),
		GiveUpAfter:   Duration(notifier.DefaultGiveUpAfter),
	}
}

// Enabled reports whether the section asks for notifications.
func (n NotifyConfig) Enabled() bool { return len(n.Routes) > 0 }

var sinkTypes = []string{"wecom", "dingtalk", "feishu", "slack", "webhook"}

// validate reports the section's problems under key. No zero is a value
// here; a route's group_wait and group_max left out take the section's.
// A sink's url and secret are never shown in a problem.
func (n NotifyConfig) validate(key string, written keySet) configErrors {
	var errs configErrors
	if err := watcher.ValidateToken(n.Durable); err != nil {
		errs.add(key+".durable", "%s is not a consumer name: %v", watcher.Quote(n.Durable), err)
	}
	if d := n.GroupWait.D(); d <= 0 || d > time.Hour {
		errs.add(key+".group_wait", "%v must be in (0, 1h]", d)
	}
	if g := n.GroupMax; g < 1 || g > 10000 {
		errs.add(key+".group_max", "%d must be in [1, 10000]", g)
	}
	if d := n.MaxAge.D(); d < time.Minute {
		errs.add(key+".max_age", "%v is shorter than 1m", d)
	}
	if d := n.DedupeHorizon.D(); d < time.Hour {
		errs.add(key+".dedupe_horizon", "%v is shorter than 1h", d)
	}
	if d := n.GiveUpAfter.D(); d < time.Minute {
		errs.add(key+".give_up_after", "%v is shorter than 1m", d)
	}
	if len(n.Routes) > 0 && len(n.Sinks) == 0 {
		errs.add(key+".sinks", "routes need at least one sink")
	}
	sinks := map[string]bool{}
	for i, s := range n.Sinks {
		k := key + ".sinks[" + itoa(i) + "]"
		if err := watcher.ValidateToken(s.Name); err != nil {
			errs.add(k+".name", "%s: %v", watcher.Quote(s.Name), err)
		} else if sinks[s.Name] {
			errs.add(k+".name", "%s is the name of an earlier sink", s.Name)
		}
		sinks[s.Name] = true
		if !slices.Contains(sinkTypes, s.Type) {
			errs.add(k+".type", "%s must be one of wecom, dingtalk, feishu, slack, webhook", watcher.Quote(s.Type))
		}
		errs = append(errs, validateWebhookURL(k+".url", s.URL)...)
		if s.Secret != "" && (s.Type == "wecom" || s.Type == "slack") {
			errs.add(k+".secret", "a %s webhook is not signed: its URL is its secret", s.Type)
		}
	}
	routes := map[string]bool{}
	for i, r := range n.Routes {
		k := key + ".routes[" + itoa(i) + "]"
		if err := watcher.ValidateToken(r.Name); err != nil {
			errs.add(k+".name", "%s: %v", watcher.Quote(r.Name), err)
		} else if routes[r.Name] {
			errs.add(k+".name", "%s is the name of an earlier route", r.Name)
		}
		routes[r.Name] = true
		switch {
		case r.Drop && len(r.Sinks) > 0:
			errs.add(k+".drop", "a route that drops sends to no sinks")
		case !r.Drop && len(r.Sinks) == 0:
			errs.add(k+".sinks", "a route needs sinks, or drop: true")
		}
		for j, s := range r.Sinks {
			switch {
			case !sinks[s]:
				errs.add(k+".sinks["+itoa(j)+"]", "no sink is named %s", watcher.Quote(s))
			case slices.Contains(r.Sinks[:j], s):
				errs.add(k+".sinks["+itoa(j)+"]", "%s is named twice", s)
			}
		}
		if written[k+".group_wait"] {
			if d := r.GroupWait.D(); d <= 0 || d > time.Hour {
				errs.add(k+".group_wait", "%v must be in (0, 1h]", d)
			}
		}
		if written[k+".group_max"] && (r.GroupMax < 1 || r.GroupMax > 10000) {
			errs.add(k+".group_max", "%d must be in [1, 10000]", r.GroupMax)
		}
		errs = append(errs, validateShowTags(k+".show_tags", r.ShowTags)...)
		if _, err := r.route(n, i); err != nil {
			errs = append(errs, err...)
		}
	}
	return errs
}

// validateShowTags checks the tag keys a route shows: each a non-empty key
// no longer than the enrichment keeps (longer keys are cut, so could never
// match), named once, at most watcher.MaxTags of them.
func validateShowTags(key string, tags []string) configErrors {
	var errs configErrors
	if len(tags) > watcher.MaxTags {
		errs.add(key, "%d tags, at most %d are carried by an event", len(tags), watcher.MaxTags)
	}
	for i, t := range tags {
		k := key + "[" + itoa(i) + "]"
		switch {
		case t == "":
			errs.add(k, "empty tag key")
		case len(t) > watcher.MaxTagKeyBytes:
			errs.add(k, "tag key longer than %d bytes never matches (events cut it)", watcher.MaxTagKeyBytes)
		case slices.Contains(tags[:i], t):
			errs.add(k, "%s is named twice", watcher.Quote(t))
		}
	}
	return errs
}

// validateWebhookURL checks a sink's URL without ever showing it: https,
// or http to a loopback address (a local relay, the tests' fake rooms).
func validateWebhookURL(key string, s Secret) configErrors {
	var errs configErrors
	u, err := url.Parse(s.Reveal())
	switch {
	case s == "":
		errs.add(key, "required")
	case err != nil || u.Host == "":
		errs.add(key, "not a URL (not shown: it holds the webhook's secret)")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Host):
	default:
		errs.add(key, "must be https (plain http only to a loopback address)")
	}
	return errs
}

// route is the notifier's route of r, or the problems of its match,
// window and template, each naming its key (index i of routes).
func (r RouteConfig) route(n NotifyConfig, i int) (notifier.Route, configErrors) {
	k := "notify.routes[" + itoa(i) + "]"
	var errs configErrors
	rt := notifier.Route{
		Name: r.Name, Sinks: r.Sinks, Drop: r.Drop, Continue: r.Continue, ShowTags: r.ShowTags,
		GroupWait: r.GroupWait.D(), GroupMax: r.GroupMax,
		Match: notifier.Match{Accounts: r.Match.Accounts, Regions: r.Match.Regions, Instances: r.Match.Instances,
			From: r.Match.From, To: r.Match.To, Kinds: r.Match.Types},
	}
	if rt.GroupWait == 0 {
		rt.GroupWait = n.GroupWait.D()
	}
	if rt.GroupMax == 0 {
		rt.GroupMax = n.GroupMax
	}
	for _, list := range []struct {
		key    string
		values []string
	}{{"accounts", r.Match.Accounts}, {"regions", r.Match.Regions}, {"instances", r.Match.Instances}} {
		for j, g := range list.values {
			if !validGlob(g) {
				errs.add(k+".match."+list.key+"["+itoa(j)+"]", "glob %s is malformed", watcher.Quote(g))
			}
		}
	}
	for _, list := range []struct {
		key    string
		values []string
	}{{"from", r.Match.From}, {"to", r.Match.To}} {
		for j, st := range list.values {
			if err := watcher.ValidateToken(st); err != nil {
				errs.add(k+".match."+list.key+"["+itoa(j)+"]", "state %s: %v", watcher.Quote(st), err)
			}
		}
	}
	for j, t := range r.Match.Types {
		if t != notifier.KindAppeared && t != notifier.KindStateChanged && t != notifier.KindDisappeared {
			errs.add(k+".match.types["+itoa(j)+"]", "%s must be appeared, state_changed or disappeared", watcher.Quote(t))
		}
	}
	for j, t := range r.Match.Tags {
		tr, err := notifier.ParseTagRule(t)
		if err != nil {
			errs.add(k+".match.tags["+itoa(j)+"]", "%v", err)
		}
		rt.Match.Tags = append(rt.Match.Tags, tr)
	}
	if a := r.Match.Active; a != nil {
		w, err := notifier.ParseWindow(a.Hours, a.Days, a.Timezone)
		if err != nil {
			errs.add(k+".match.active", "%v", err)
		}
		rt.Match.Active = w
	}
	if r.Template != "" {
		t, err := notifier.ParseTemplate(r.Name, r.Template)
		if err == nil {
			err = notifier.CheckTemplate(t)
		}
		if err != nil {
			errs.add(k+".template", "%v", err)
		}
		rt.Template = t
	}
	return rt, errs
}

// routes are the notifier's routes of the section.
func (n NotifyConfig) routes() ([]notifier.Route, error) {
	var out []notifier.Route
	var errs configErrors
	for i, r := range n.Routes {
		rt, e := r.route(n, i)
		errs = append(errs, e...)
		out = append(out, rt)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

func validGlob(g string) bool {
	_, err := path.Match(g, "")
	return err == nil
}

// platform is the notifier's platform of s.
func (s SinkConfig) platform() notifier.Platform {
	u, secret := s.URL.Reveal(), s.Secret.Reveal()
	switch s.Type {
	case "wecom":
		return &notifier.WeCom{URL: u}
	case "dingtalk":
		return &notifier.DingTalk{URL: u, Secret: secret}
	case "feishu":
		return &notifier.Feishu{URL: u, Secret: secret}
	case "slack":
		return &notifier.Slack{URL: u}
	}
	return &notifier.Webhook{URL: u, Secret: secret}
}
