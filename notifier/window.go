package notifier

import (
	"fmt"
	"strings"
	"time"
)

// Window is a time of day, on some days of the week, in a time zone: when a
// route applies (quiet hours are a dropping route active at night). From
// and To are minutes after midnight; a window with To before From wraps
// past midnight (22:00-08:00), and its days are the days it starts on.
type Window struct {
	Days     []time.Weekday // empty: every day
	From, To int
	Loc      *time.Location
}

// ParseWindow reads "HH:MM-HH:MM", days such as "mon-fri" or
// "sat,sun" (empty: every day) and an IANA zone (empty: UTC).
func ParseWindow(hours, days, zone string) (*Window, error) {
	w := &Window{Loc: time.UTC}
	if zone != "" {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("time zone %q: %w", zone, err)
		}
		w.Loc = loc
	}
	from, to, ok := strings.Cut(hours, "-")
	if !ok {
		return nil, fmt.Errorf("hours %q: want HH:MM-HH:MM", hours)
	}
	var err error
	if w.From, err = clock(from); err != nil {
		return nil, fmt.Errorf("hours %q: %w", hours, err)
	}
	if w.To, err = clock(to); err != nil {
		return nil, fmt.Errorf("hours %q: %w", hours, err)
	}
	if w.From == w.To {
		return nil, fmt.Errorf("hours %q: an empty window", hours)
	}
	if days != "" {
		if w.Days, err = parseDays(days); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if s = strings.TrimSpace(s); s == "24:00" {
		return 24 * 60, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func parseDays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	for _, part := range strings.Split(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		a, b, isRange := strings.Cut(part, "-")
		da, ok1 := weekdays[a]
		db, ok2 := weekdays[b]
		if !isRange {
			db, ok2 = da, ok1
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("days %q: want names like mon, sat-sun, mon-fri", s)
		}
		for d := da; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == db {
				break
			}
		}
	}
	return out, nil
}

// Contains reports whether t falls in the window.
func (w *Window) Contains(t time.Time) bool {
	t = t.In(w.Loc)
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.From < w.To {
		return m >= w.From && m < w.To && w.onDay(day)
	}
	// Wraps midnight: the evening part starts today, the morning part
	// started yesterday.
	if m >= w.From {
		return w.onDay(day)
	}
	return m < w.To && w.onDay((day+6)%7)
}

func (w *Window) onDay(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}
