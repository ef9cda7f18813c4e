package natstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
)

// Options configure a Server. The zero value is a JetStream server on a
// free port with a store of its own.
type Options struct {
	// Name is the server name, checked on connecting so that another
	// server on the port is never mistaken for this one. Default: a name
	// unique to the test process and the server.
	Name string
	// Port is the client port, kept across restarts. Zero picks a free one
	// below the ephemeral range (publishertest.RestartablePort), replaced by
	// another if it is taken before the first start; a port given here is
	// never replaced (cluster routes name it).
	Port int
	// StoreDir is the JetStream store, kept across restarts. Default:
	// tb.TempDir().
	StoreDir string
	// Flags are further command-line flags, such as "-c", file or "--user",
	// u, "--pass", p, or cluster flags. SetFlags changes them for the next
	// start.
	Flags []string
}

// Server is a nats-server process (ServerBinary) with JetStream, listening
// on 127.0.0.1 at a fixed port with a fixed store directory, so that a
// server started again serves the same streams. It is stopped when the test
// ends and SIGKILLed if the test process dies. Its methods may be called
// from several goroutines.
type Server struct {
	tb        testing.TB
	bin, name string
	dir       string
	pickPort  bool

	mu     sync.Mutex
	port   int
	flags  []string
	cmd    *exec.Cmd
	done   chan struct{}
	log    syncBuffer
	starts int // successful starts
}

// serverIDs numbers the servers of this test process.
var serverIDs atomic.Int64

// NewServer returns a server that is not started yet: a cluster's nodes
// must all know each other's ports before the first starts.
func NewServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: ServerBinary(tb), name: o.Name, dir: o.StoreDir, port: o.Port, flags: slices.Clone(o.Flags)}
	if s.name == "" {
		s.name = fmt.Sprintf("natstest-%d-%d", os.Getpid(), serverIDs.Add(1))
	}
	if s.dir == "" {
		s.dir = tb.TempDir()
	}
	if s.port == 0 {
		s.port, s.pickPort = publishertest.RestartablePort(tb), true
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartServer returns a started server with the given extra flags.
func StartServer(tb testing.TB, flags ...string) *Server {
	tb.Helper()
	s := NewServer(tb, Options{Flags: flags})
	s.Start()
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// Name is the server name.
func (s *Server) Name() string { return s.name }

// StoreDir is the JetStream store directory.
func (s *Server) StoreDir() string { return s.dir }

// Flags returns the extra flags of the next start.
func (s *Server) Flags() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.flags)
}

// SetFlags replaces the extra flags; they apply from the next start.
func (s *Server) SetFlags(flags ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flags = slices.Clone(flags)
}

// Log returns what the current (or last) process wrote.
func (s *Server) Log() string { return s.log.String() }

// Start runs the server and returns once it accepts connections (or, when
// its flags require credentials, refuses ours for want of them). It fails
// the test if the server does not come up within 20 s.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatalf("nats-server %s: started twice", s.name)
	}
	for attempt := 0; ; attempt++ {
		err := s.startLocked()
		if err == nil {
			return
		}
		if !s.pickPort || s.starts > 0 || attempt == 5 {
			s.tb.Fatalf("nats-server %s on port %d: %v\n%s", s.name, s.port, err, s.log.String())
		}
		s.port = publishertest.RestartablePort(s.tb)
	}
}

// tryStart starts the server once on its port, and returns why not.
func (s *Server) tryStart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("nats-server %s: started twice", s.name)
	}
	if err := s.startLocked(); err != nil {
		return fmt.Errorf("nats-server %s on port %d: %v\n%s", s.name, s.port, err, s.log.String())
	}
	return nil
}

func (s *Server) startLocked() error {
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-sd", s.dir, "-n", s.name}, s.flags...)
	s.log.Reset()
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	// SIGKILL when the test process dies (a panic, -timeout), so that no
	// server outlives it holding its port. Linux sends it when the forking
	// OS thread exits; the Go runtime ends threads only for goroutines that
	// exit locked to one.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	url := fmt.Sprintf("nats://127.0.0.1:%d", s.port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			s.cmd = nil
			return errors.New("exited at start")
		default:
		}
		nc, err := nats.Connect(url, nats.Timeout(time.Second), s.authOption())
		if err == nil {
			got := nc.ConnectedServerName()
			nc.Close()
			if got == s.name {
				s.starts++
				return nil
			}
		} else if strings.Contains(err.Error(), "uthorization") {
			s.starts++
			return nil // up, and refusing us as its flags say
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.done
			s.cmd = nil
			return fmt.Errorf("not ready within 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AuthOption is the connect option carrying the --user and --pass of the
// server's flags (none without them).
func (s *Server) AuthOption() nats.Option {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authOption()
}

func (s *Server) authOption() nats.Option {
	var user, pass string
	for i := 0; i+1 < len(s.flags); i++ {
		switch s.flags[i] {
		case "--user":
			user = s.flags[i+1]
		case "--pass":
			pass = s.flags[i+1]
		}
	}
	if user == "" {
		return func(*nats.Options) error { return nil }
	}
	return nats.UserInfo(user, pass)
}

// Kill SIGKILLs the server, if it runs, and waits until it is gone.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop SIGTERMs the server, if it runs, and waits until it is gone
// (SIGKILLing it after 15 s).
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Restart SIGKILLs the server and starts it again on the same port and
// store.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.Start()
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
