package notifier

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/cvmwatch/cvmwatch/notifier/notifiertest"
)

// platformOf returns the platform of kind posting to url with secret.
func platformOf(kind notifiertest.Kind, url, secret string) Platform {
	switch kind {
	case notifiertest.WeCom:
		return &WeCom{URL: url + "/cgi-bin/webhook/send?key=k"}
	case notifiertest.DingTalk:
		return &DingTalk{URL: url + "/robot/send?access_token=t", Secret: secret}
	case notifiertest.Feishu:
		return &Feishu{URL: url + "/open-apis/bot/v2/hook/h", Secret: secret}
	case notifiertest.Slack:
		return &Slack{URL: url + "/services/T/B/X"}
	}
	return &Webhook{URL: url + "/hook", Secret: secret}
}

var allKinds = []notifiertest.Kind{notifiertest.WeCom, notifiertest.DingTalk, notifiertest.Feishu, notifiertest.Slack, notifiertest.Webhook}

func TestSenderPostsToEachPlatformOverHTTP(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			room := notifiertest.NewRoom(kind, notifiertest.Options{Secret: "s3cret"})
			srv := room.Server(t)
			s := NewSender("room", platformOf(kind, srv.URL, "s3cret"), SenderOptions{})
			if err := s.Send(t.Context(), Message{Title: "t", Text: "**3 instances** STOPPED"}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := room.Messages()
			if got, want := len(msgs), 1; got != want {
				t.Fatalf("room has %d messages, want %d (refused: %q)", got, want, room.Refused())
			}
			if got, want := msgs[0].Text, "**3 instances** STOPPED"; got != want {
				t.Fatalf("text = %q, want %q", got, want)
			}
		})
	}
}

func TestSenderGivesUpOnABadSignature(t *testing.T) {
	for _, kind := range []notifiertest.Kind{notifiertest.DingTalk, notifiertest.Feishu, notifiertest.Webhook} {
		t.Run(string(kind), func(t *testing.T) {
			room := notifiertest.NewRoom(kind, notifiertest.Options{Secret: "right"})
			srv := room.Server(t)
			s := NewSender("room", platformOf(kind, srv.URL, "wrong-secret"), SenderOptions{})
			err := s.Send(t.Context(), Message{Title: "t", Text: "x"})
			if !errors.Is(err, ErrGiveUp) {
				t.Fatalf("Send = %v, want ErrGiveUp", err)
			}
			if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("error shows the secret or the URL: %v", err)
			}
			if got := len(room.Messages()); got != 0 {
				t.Fatalf("room accepted %d messages with a bad signature", got)
			}
		})
	}
}

// TestSenderKeepsToThePlatformRate: a burst of messages through each
// platform's own limits is never throttled, and reaches the room at most
// at the platform's rate.
func TestSenderKeepsToThePlatformRate(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				room := notifiertest.NewRoom(kind, notifiertest.Options{Secret: "s"})
				s := NewSender("room", platformOf(kind, "http://room.invalid", "s"), SenderOptions{Client: room.Client()})
				for i := range 45 {
					if err := s.Send(t.Context(), Message{Title: "t", Text: strings.Repeat("x", i+1)}); err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
				}
				if got := room.Throttled(); got != 0 {
					t.Fatalf("room throttled %d requests, want 0", got)
				}
				if got, want := len(room.Messages()), 45; got != want {
					t.Fatalf("room has %d messages, want %d", got, want)
				}
			})
		})
	}
}

// TestSenderWaitsOutThrottling: a room stricter than the platform's
// documented limit throttles; every message still arrives, after the wait
// the platform asked for, with no message lost or doubled.
func TestSenderWaitsOutThrottling(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				room := notifiertest.NewRoom(kind, notifiertest.Options{PerMinute: 3})
				m := NewMetrics(prometheusRegistry())
				s := NewSender("room", platformOf(kind, "http://room.invalid", ""), SenderOptions{Client: room.Client(), Metrics: m})
				start := time.Now()
				for i := range 8 {
					if err := s.Send(t.Context(), Message{Title: "t", Text: "m" + string(rune('a'+i))}); err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
				}
				if room.Throttled() == 0 {
					t.Fatalf("room never throttled: the test proves nothing")
				}
				msgs := room.Messages()
				if got, want := len(msgs), 8; got != want {
					t.Fatalf("room has %d messages, want %d", got, want)
				}
				for i, p := range msgs {
					if want := "m" + string(rune('a'+i)); p.Text != want {
						t.Fatalf("message %d = %q, want %q", i, p.Text, want)
					}
				}
				if got := room.MaxInWindow(time.Minute); got > 3 {
					t.Fatalf("room accepted %d in a minute, more than its 3", got)
				}
				if time.Since(start) < 2*time.Minute {
					t.Fatalf("8 messages at 3 a minute took only %v", time.Since(start))
				}
				if got := counterValue(t, m.Throttled, "room"); got != float64(room.Throttled()) {
					t.Fatalf("throttled metric = %v, want %d", got, room.Throttled())
				}
			})
		})
	}
}

func TestSenderRetriesARoomThatIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := notifiertest.NewRoom(notifiertest.Slack, notifiertest.Options{})
		room.SetDown(-1)
		s := NewSender("room", &Slack{URL: "http://room.invalid/x"}, SenderOptions{Client: room.Client()})
		go func() {
			time.Sleep(5 * time.Minute)
			room.SetDown(0)
		}()
		start := time.Now()
		if err := s.Send(t.Context(), Message{Text: "after the outage"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := len(room.Messages()); got != 1 {
			t.Fatalf("room has %d messages, want 1", got)
		}
		if d := time.Since(start); d < 5*time.Minute {
			t.Fatalf("delivered after %v, before the room was up", d)
		}
	})
}

func TestSenderGivesUpAfterGiveUpAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := notifiertest.NewRoom(notifiertest.WeCom, notifiertest.Options{})
		room.SetDown(-1)
		s := NewSender("room", &WeCom{URL: "http://room.invalid/x"}, SenderOptions{Client: room.Client(), GiveUpAfter: 10 * time.Minute})
		err := s.Send(t.Context(), Message{Text: "never"})
		if !errors.Is(err, ErrGiveUp) {
			t.Fatalf("Send = %v, want ErrGiveUp", err)
		}
		if room.Requests() < 3 {
			t.Fatalf("gave up after %d requests, want retries", room.Requests())
		}
	})
}

func TestSenderSplitsAnOversizeMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := notifiertest.NewRoom(notifiertest.WeCom, notifiertest.Options{})
		s := NewSender("room", &WeCom{URL: "http://room.invalid/x"}, SenderOptions{Client: room.Client()})
		var lines []string
		for i := range 400 {
			lines = append(lines, "- 实例 web-"+strings.Repeat("9", i%5)+" STOPPED")
		}
		text := strings.Join(lines, "\n")
		if err := s.Send(context.Background(), Message{Text: text}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		msgs := room.Messages()
		if len(msgs) < 2 {
			t.Fatalf("a %d-byte message went as %d part(s)", len(text), len(msgs))
		}
		var got []string
		for _, p := range msgs {
			if len(p.Text) > 4096 || !utf8.ValidString(p.Text) {
				t.Fatalf("a part is %d bytes or not UTF-8", len(p.Text))
			}
			got = append(got, p.Text)
		}
		if strings.Join(got, "\n") != text {
			t.Fatalf("the parts do not make the text")
		}
	})
}

// TestSenderSplitsOnTheEncodedBody: DingTalk and Feishu bound the request
// body (20000 bytes), not the text; a text within MaxBytes whose quotes,
// backslashes and tabs JSON doubles would make a body over the limit, which
// the room refuses for good. The parts are cut on the body as encoded.
func TestSenderSplitsOnTheEncodedBody(t *testing.T) {
	for _, kind := range []notifiertest.Kind{notifiertest.DingTalk, notifiertest.Feishu} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				room := notifiertest.NewRoom(kind, notifiertest.Options{Secret: "s3cret", MaxBytes: 20000})
				p := platformOf(kind, "http://room.invalid", "s3cret")
				s := NewSender("room", p, SenderOptions{Client: room.Client()})
				var lines []string
				for n := 0; n < p.Limits().MaxBytes-40; n += 30 {
					lines = append(lines, `- "web\\01"`+"\t"+`<&> "STOPPED"`)
				}
				text := strings.Join(lines, "\n")
				if err := s.Send(context.Background(), Message{Title: "t", Text: text}); err != nil {
					t.Fatalf("Send of a %d-byte text: %v (refused: %q)", len(text), err, room.Refused())
				}
				var got []string
				for _, m := range room.Messages() {
					got = append(got, m.Text)
				}
				if len(got) < 2 {
					t.Fatalf("a %d-byte text that doubles when encoded went as %d part(s)", len(text), len(got))
				}
				if strings.Join(got, "\n") != text {
					t.Fatal("the parts do not make the text")
				}
			})
		})
	}
}

// TestSenderDoesNotFollowARedirect: a webhook that answers with a redirect
// did not take the message (a client following a 302 would turn the POST
// into a GET, and a 200 to that GET would count as accepted): the message
// is given up, not counted as told.
func TestSenderDoesNotFollowARedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			io.WriteString(w, "ok")
			return
		}
		http.Redirect(w, r, "/moved", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	s := NewSender("room", &Slack{URL: srv.URL + "/services/T/B/X"}, SenderOptions{})
	err := s.Send(t.Context(), Message{Text: "x"})
	if !errors.Is(err, ErrGiveUp) {
		t.Fatalf("Send = %v, want ErrGiveUp", err)
	}
	if strings.Contains(err.Error(), "/services/T/B/X") {
		t.Fatalf("error shows the URL: %v", err)
	}
}

// TestSenderErrorsNeverEchoTheWebhookSecret: a receiver (or a proxy before
// it) that echoes the request line in its refusal must not put the
// webhook's secret path or key into the error the notifier logs.
func TestSenderErrorsNeverEchoTheWebhookSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "bad request: POST "+r.URL.RequestURI()+"; token "+r.URL.Query().Get("access_token")+
			"; hook "+path.Base(r.URL.Path))
	}))
	t.Cleanup(srv.Close)
	for name, p := range map[string]Platform{
		"slack path":                  &Slack{URL: srv.URL + "/services/T0/B0/SECRETPATH"},
		"wecom key":                   &WeCom{URL: srv.URL + "/cgi-bin/webhook/send?key=SECRETKEY"},
		"dingtalk access token alone": &DingTalk{URL: srv.URL + "/robot/send?access_token=SECRETTOKEN", Secret: "s"},
	} {
		t.Run(name, func(t *testing.T) {
			err := NewSender("room", p, SenderOptions{}).Send(t.Context(), Message{Text: "x"})
			if !errors.Is(err, ErrGiveUp) {
				t.Fatalf("Send = %v, want ErrGiveUp", err)
			}
			if strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "[redacted]") {
				t.Fatalf("error = %v, want the echoed secret redacted", err)
			}
		})
	}
}
