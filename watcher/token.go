package watcher

import (
	"errors"
	"fmt"
	"strconv"
)

// MaxTokenLen bounds any single subject token taken from the API. Instance IDs
// are 12 characters and states under 30; anything this long is hostile.
const MaxTokenLen = 64

// ErrInvalidToken is wrapped by every error ValidateToken returns.
var ErrInvalidToken = errors.New("not a safe subject token")

// ValidateToken checks that s can be one NATS subject token as it is: 1 to
// MaxTokenLen characters of [A-Za-z0-9_-]. This rules out '.', '*', '>',
// spaces, control characters and the empty token, so no value taken from the
// API can change the shape of a subject.
func ValidateToken(s string) error {
	if s == "" {
		return fmt.Errorf("empty: %w", ErrInvalidToken)
	}
	if len(s) > MaxTokenLen {
		return fmt.Errorf("%d bytes, more than %d: %w", len(s), MaxTokenLen, ErrInvalidToken)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("byte %q at %d: %w", c, i, ErrInvalidToken)
		}
	}
	return nil
}

// Quote renders a value taken from the API for a log line or an error: quoted,
// with control characters escaped, and cut to a bounded length so a hostile
// value can neither forge log lines nor flood them.
func Quote(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
