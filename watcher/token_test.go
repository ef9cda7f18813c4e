package watcher

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateToken(t *testing.T) {
	good := []string{"ins-r8hr2upy", "RUNNING", "ENTER_SERVICE_LIVE_MIGRATE", "a", strings.Repeat("x", MaxTokenLen)}
	for _, s := range good {
		if err := ValidateToken(s); err != nil {
			t.Errorf("ValidateToken(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{"", "ins-a.b", "ins-*", "ins->", "ins-a b", "ins-\n", "ins-é", "a\x00b", "$SYS", strings.Repeat("x", MaxTokenLen+1)}
	for _, s := range bad {
		if err := ValidateToken(s); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ValidateToken(%q) = %v, want ErrInvalidToken", s, err)
		}
	}
}

func TestValidateObservation(t *testing.T) {
	if err := ValidateObservation(Observation{InstanceID: "ins-r8hr2upy", State: "HIBERNATING"}); err != nil {
		t.Errorf("unknown but well-formed state rejected: %v", err)
	}
	for _, o := range []Observation{
		{InstanceID: "ins-a.b>*", State: StateRunning},
		{InstanceID: "ins-r8hr2upy", State: "RUN NING"},
		{InstanceID: "ins-r8hr2upy", State: ""},
		{InstanceID: "ins-r8hr2upy", State: Absent},
	} {
		if err := ValidateObservation(o); err == nil {
			t.Errorf("ValidateObservation(%+v) = nil, want an error", o)
		}
	}
}

func TestQuoteBoundsHostileValues(t *testing.T) {
	q := Quote("line\nforged=1 " + strings.Repeat("x", 500))
	if strings.Contains(q, "\n") {
		t.Errorf("Quote kept a newline: %s", q)
	}
	if len(q) > 100 {
		t.Errorf("Quote is %d bytes, want it bounded", len(q))
	}
}
