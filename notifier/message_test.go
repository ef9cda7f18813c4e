package notifier

import (
	"strings"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestUserTemplateGetsTheDataModel(t *testing.T) {
	tmpl, err := ParseTemplate("t", `{{ .Title }}{{ range .Items }}
{{ if .Name }}{{ .Name }}{{ else }}{{ .InstanceID }}{{ end }} {{ .From }}->{{ .To }}{{ if .Rebooted }} rebooted{{ end }} team={{ tag . "team" }}{{ end }}`)
	if err != nil {
		t.Fatal(err)
	}
	rt := &Route{Name: "r", Template: tmpl}
	m, err := Render(rt, StyleSlack, 3000, SampleEvents(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := "2 instances changed state in prod / ap-guangzhou\nweb-01 RUNNING->RUNNING rebooted team=web\nins-0000bare RUNNING->STOPPED team="
	if m.Text != want {
		t.Fatalf("text =\n%s\nwant\n%s", m.Text, want)
	}
}

func TestDefaultTemplateShowsEnrichmentOrIDs(t *testing.T) {
	rt := &Route{Name: "r", ShowTags: []string{"env"}}
	m, err := Render(rt, StyleMarkdown, 4096, SampleEvents(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**web-01** `ins-r8hr2upy` rebooted", "env=prod", "(RebootInstances by ops-bot)", "- `ins-0000bare` 🟢 RUNNING → 🔴 STOPPED"} {
		if !strings.Contains(m.Text, want) {
			t.Fatalf("text lacks %q:\n%s", want, m.Text)
		}
	}
}

// TestSlackTextEscapesControlCharacters: an instance name, tag or actor is
// anyone's to set; in Slack's mrkdwn "<!channel>" would notify the whole
// channel and "<url|text>" would hide a link, so &, < and > are escaped as
// Slack documents.
func TestSlackTextEscapesControlCharacters(t *testing.T) {
	e := SampleEvents()[2]
	e.Instance = &watcher.Instance{Name: "<!channel> & co", Tags: []watcher.Tag{{Key: "env", Value: "<https://evil.example|prod>"}}}
	e.Operation, e.Actor = &watcher.Operation{Name: "StopInstances"}, &watcher.Actor{Username: "<@U123>"}
	m, err := Render(&Route{Name: "r", ShowTags: []string{"env"}}, StyleSlack, 3000, []Event{e}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<!channel>", "<https://evil", "<@U123>"} {
		if strings.Contains(m.Text, bad) {
			t.Fatalf("text holds %q unescaped:\n%s", bad, m.Text)
		}
	}
	for _, want := range []string{"&lt;!channel&gt; &amp; co", "env=&lt;https://evil.example|prod&gt;", "by &lt;@U123&gt;"} {
		if !strings.Contains(m.Text, want) {
			t.Fatalf("text lacks %q:\n%s", want, m.Text)
		}
	}
}

// TestMarkdownTextCannotMention: WeCom's <@userid>, Feishu's <at id=all>
// and DingTalk's HTML have no documented escape, so a name, tag or actor
// that holds one reaches the room with full-width brackets: shown, inert.
func TestMarkdownTextCannotMention(t *testing.T) {
	e := SampleEvents()[2]
	e.Instance = &watcher.Instance{Name: "<@all>", Tags: []watcher.Tag{{Key: "env", Value: `<at id=all></at>`}}}
	e.Operation, e.Actor = &watcher.Operation{Name: "StopInstances"}, &watcher.Actor{Username: `<font color="warning">boss</font>`}
	for _, style := range []Style{StyleWeCom, StyleMarkdown} {
		m, err := Render(&Route{Name: "r", ShowTags: []string{"env"}}, style, 4096, []Event{e}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"<@all>", "<at id=all>", `<font color="warning">boss`} {
			if strings.Contains(m.Text, bad) {
				t.Fatalf("style %d: text holds %q as markup:\n%s", style, bad, m.Text)
			}
		}
		if !strings.Contains(m.Text, "\uff1c@all\uff1e") {
			t.Fatalf("style %d: the name is not shown:\n%s", style, m.Text)
		}
	}
}
