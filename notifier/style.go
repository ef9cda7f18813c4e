package notifier

import (
	"strings"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Style is the markup dialect of a platform's default template.
type Style int

// The dialects.
const (
	// StylePlain is text without markup (the generic webhook's text).
	StylePlain Style = iota
	// StyleMarkdown is common markdown (DingTalk, Feishu cards).
	StyleMarkdown
	// StyleWeCom is WeCom's markdown, which colours text with
	// <font color="info|comment|warning">.
	StyleWeCom
	// StyleSlack is Slack's mrkdwn: *bold*, emoji shortcodes.
	StyleSlack
)

// slackEscaper escapes the three characters Slack's mrkdwn gives meaning
// to ("<!channel>", "<url|text>", "<@user>"), as Slack documents.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// markupNeutralizer replaces the angle brackets that start a mention or a
// tag in the markdown dialects (WeCom's <@userid> and <font>, Feishu's
// <at id=all></at>, DingTalk's HTML) with full-width look-alikes: none of
// those platforms documents an escape, so the characters themselves go.
var markupNeutralizer = strings.NewReplacer("<", "\uff1c", ">", "\uff1e")

// Escape makes t, a value from the cloud that anyone may set (a name, a tag,
// an actor), show as text rather than act as markup: Slack's own escapes for
// its controls; elsewhere "<" and ">" become full-width look-alikes, so a
// name such as "<@all>" cannot mention anyone. Plain text is left as is.
func (s Style) Escape(t string) string {
	switch s {
	case StyleSlack:
		return slackEscaper.Replace(t)
	case StylePlain:
		return t
	}
	return markupNeutralizer.Replace(t)
}

// Bold marks s as bold.
func (s Style) Bold(t string) string {
	switch s {
	case StyleMarkdown, StyleWeCom:
		return "**" + t + "**"
	case StyleSlack:
		return "*" + t + "*"
	}
	return t
}

// Code marks s as code (an instance ID).
func (s Style) Code(t string) string {
	if s == StylePlain {
		return t
	}
	return "`" + t + "`"
}

// State shows a state with the platform's colour or emoji: green for
// running, red for stopped or gone, amber for the states in between.
func (s Style) State(st watcher.State) string {
	tone := stateTone(st)
	switch s {
	case StyleWeCom:
		color := map[int]string{toneGood: "info", toneBad: "warning", toneBetween: "comment"}[tone]
		return `<font color="` + color + `">` + string(st) + `</font>`
	case StyleSlack:
		return map[int]string{toneGood: ":large_green_circle: ", toneBad: ":red_circle: ", toneBetween: ":large_yellow_circle: "}[tone] + string(st)
	case StyleMarkdown:
		return map[int]string{toneGood: "🟢 ", toneBad: "🔴 ", toneBetween: "🟡 "}[tone] + string(st)
	}
	return string(st)
}

const (
	toneBetween = iota
	toneGood
	toneBad
)

func stateTone(st watcher.State) int {
	switch st {
	case watcher.StateRunning:
		return toneGood
	case watcher.StateStopped, watcher.Absent, watcher.StateShutdown, watcher.StateLaunchFailed, watcher.StateTerminating:
		return toneBad
	}
	return toneBetween
}
