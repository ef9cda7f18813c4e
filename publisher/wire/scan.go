package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// ScanContentType is the Content-Type of a scan summary: plain JSON, not a
// CloudEvent (summaries are heartbeats, not part of the event contract).
const ScanContentType = "application/json"

// ScanMessage is the JSON body published on "<prefix>.scan.<account>.<region>"
// after every committed scan. Field names are stable; new fields may be added.
//
//	{"account":"prod","region":"ap-guangzhou","started":"2026-11-26T23:10:00.000Z",
//	 "durationMs":1234,"complete":true,"instances":250,"byState":{"RUNNING":240,"STOPPED":10},
//	 "events":2,"heldDisappearances":0,"pages":3,"pagesFailed":0,"requests":4,
//	 "retries":1,"throttles":1,"rejected":0}
type ScanMessage struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	// Started is when the scan began, in watcher.TimeFormat (UTC, ms).
	Started    string `json:"started"`
	DurationMs int64  `json:"durationMs"`
	// Complete is true only if every page of the listing succeeded.
	Complete bool `json:"complete"`
	// Instances counts the instances known after the scan; ByState per state.
	Instances int            `json:"instances"`
	ByState   map[string]int `json:"byState"`
	// Events counts the events the scan committed to the outbox.
	Events int `json:"events"`
	// HeldDisappearances counts missing instances held back as part of a
	// suspected mass disappearance.
	HeldDisappearances int `json:"heldDisappearances"`
	Pages              int `json:"pages"`
	PagesFailed        int `json:"pagesFailed"`
	Requests           int `json:"requests"`
	Retries            int `json:"retries"`
	Throttles          int `json:"throttles"`
	Rejected           int `json:"rejected"`
}

// NewScanMessage converts a summary to its published form.
func NewScanMessage(s watcher.ScanSummary) ScanMessage {
	by := make(map[string]int, len(s.ByState))
	for st, n := range s.ByState {
		by[string(st)] = n
	}
	return ScanMessage{
		Account:            s.Target.Account,
		Region:             s.Target.Region,
		Started:            s.Started.UTC().Format(watcher.TimeFormat),
		DurationMs:         s.Duration.Milliseconds(),
		Complete:           s.Complete,
		Instances:          s.Instances,
		ByState:            by,
		Events:             s.Events,
		HeldDisappearances: s.HeldDisappearances,
		Pages:              s.Stats.Pages,
		PagesFailed:        s.Stats.PagesFailed,
		Requests:           s.Stats.Requests,
		Retries:            s.Stats.Retries,
		Throttles:          s.Stats.Throttles,
		Rejected:           s.Stats.Rejected,
	}
}

// ScanMsgID returns the Nats-Msg-Id of a summary: "scan/<account>/<region>/<started>"
// with the start in UTC to the nanosecond, so publishing one summary twice is
// a duplicate and two scans never collide.
func ScanMsgID(s watcher.ScanSummary) string {
	return "scan/" + s.Target.Account + "/" + s.Target.Region + "/" + s.Started.UTC().Format(time.RFC3339Nano)
}

// EncodeScan returns the message for s published under prefix, or says why
// s cannot be published: an unsafe prefix, account or region (the error
// wraps watcher.ErrInvalidToken), or an encoding failure.
func EncodeScan(prefix string, s watcher.ScanSummary) (Message, error) {
	subject, err := watcher.ScanSubject(prefix, s.Target)
	if err != nil {
		return Message{}, err
	}
	data, err := json.Marshal(NewScanMessage(s))
	if err != nil {
		return Message{}, fmt.Errorf("encode scan summary %s: %w", s.Target, err)
	}
	return Message{
		Subject: subject,
		Header:  Header{HeaderContentType: {ScanContentType}, HeaderMsgID: {ScanMsgID(s)}},
		Data:    data,
	}, nil
}
