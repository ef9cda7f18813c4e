package watcher

import "fmt"

// Target is one (account, region) pair: the unit that is scanned, diffed and
// committed together. Both fields are safe NATS subject tokens.
type Target struct {
	Account string
	Region  string
}

// String returns "account/region", the form used in logs and CloudEvents
// sources.
func (t Target) String() string { return t.Account + "/" + t.Region }

// State is an instance state as the CVM API reports it (RUNNING, STOPPED,
// ...). States the project does not know yet are passed through unchanged;
// Absent is the project's own marker for "does not exist".
type State string

// Absent is the state of an instance that does not exist: the FROM of an
// appearance and the TO of a confirmed disappearance. The API never reports
// it; a listing that does is rejected as malformed.
const Absent State = "ABSENT"

// The states documented for cvm v1.3.130. Others may appear at any time and
// are passed through as they are.
const (
	StatePending                 State = "PENDING"
	StateLaunchFailed            State = "LAUNCH_FAILED"
	StateRunning                 State = "RUNNING"
	StateStopped                 State = "STOPPED"
	StateStarting                State = "STARTING"
	StateStopping                State = "STOPPING"
	StateRebooting               State = "REBOOTING"
	StateShutdown                State = "SHUTDOWN"
	StateTerminating             State = "TERMINATING"
	StateEnterRescueMode         State = "ENTER_RESCUE_MODE"
	StateRescueMode              State = "RESCUE_MODE"
	StateExitRescueMode          State = "EXIT_RESCUE_MODE"
	StateEnterServiceLiveMigrate State = "ENTER_SERVICE_LIVE_MIGRATE"
	StateServiceLiveMigrate      State = "SERVICE_LIVE_MIGRATE"
	StateExitServiceLiveMigrate  State = "EXIT_SERVICE_LIVE_MIGRATE"
)

// Transitional reports whether s is a state an instance only passes
// through on its way to another (PENDING, STARTING, STOPPING, REBOOTING,
// TERMINATING, the rescue-mode and service-live-migration entries and
// exits, and SERVICE_LIVE_MIGRATE itself): an instance in one is about to
// change again, so the hot set looks it up by ID until it leaves it. Stable
// states, Absent and states the project does not know are not
// transitional. This is the one place that classifies states.
func (s State) Transitional() bool {
	switch s {
	case StatePending, StateStarting, StateStopping, StateRebooting, StateTerminating,
		StateEnterRescueMode, StateExitRescueMode,
		StateEnterServiceLiveMigrate, StateServiceLiveMigrate, StateExitServiceLiveMigrate:
		return true
	}
	return false
}

// Observation is the state of one instance as one API response reported it.
// A valid Observation has a token-safe InstanceID and State (see
// ValidateObservation).
type Observation struct {
	InstanceID string
	State      State
}

// ValidateObservation reports why an observation taken from the API cannot be
// used: an instance ID or state that is not a safe subject token, or a state
// of Absent. A nil error means both may go into a NATS subject as they are.
func ValidateObservation(o Observation) error {
	if err := ValidateToken(o.InstanceID); err != nil {
		return fmt.Errorf("instance id %s: %w", Quote(o.InstanceID), err)
	}
	if err := ValidateToken(string(o.State)); err != nil {
		return fmt.Errorf("instance %s state %s: %w", o.InstanceID, Quote(string(o.State)), err)
	}
	if o.State == Absent {
		return fmt.Errorf("instance %s: state %s is reserved", o.InstanceID, Absent)
	}
	return nil
}
