package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// defaultServer is where tail and history connect unless told otherwise:
// the embedded server of a daemon on the same machine.
const defaultServer = "nats://127.0.0.1:4222"

// natsClientFlags are the connection flags shared by the commands that read
// events (tail, history). Each falls back to the environment variable the
// nats CLI uses. Defaults are never taken from the environment at flag
// definition time, so --help cannot show a secret.
type natsClientFlags struct {
	server, creds, nkey, token, user, password string
	ca, cert, key                              string
	prefix                                     string
}

// register defines the flags on c.
func (f *natsClientFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVarP(&f.server, "server", "s", defaultServer, "NATS server URLs, comma-separated (env NATS_URL)")
	fl.StringVar(&f.creds, "creds", "", "NATS credentials file (env NATS_CREDS)")
	fl.StringVar(&f.nkey, "nkey", "", "NATS user nkey seed file (env NATS_NKEY)")
	fl.StringVar(&f.token, "token", "", "NATS token; prefer env NATS_TOKEN, a flag is visible to other users in ps")
	fl.StringVar(&f.user, "user", "", "NATS user (env NATS_USER)")
	fl.StringVar(&f.password, "password", "", "NATS password; prefer env NATS_PASSWORD")
	fl.StringVar(&f.ca, "tlsca", "", "CA certificate file that verifies the server (env NATS_CA)")
	fl.StringVar(&f.cert, "tlscert", "", "client certificate file (env NATS_CERT)")
	fl.StringVar(&f.key, "tlskey", "", "client private key file (env NATS_KEY)")
	fl.StringVar(&f.prefix, "prefix", defaultSubjectPrefix, "subject prefix the watcher publishes under (nats.subject_prefix)")
}

// resolve fills every flag the command line left unset from its environment
// variable, and checks the prefix.
func (f *natsClientFlags) resolve(c *cobra.Command, lookup func(string) (string, bool)) error {
	for _, e := range []struct {
		flag, env string
		dst       *string
	}{
		{"server", "NATS_URL", &f.server},
		{"creds", "NATS_CREDS", &f.creds},
		{"nkey", "NATS_NKEY", &f.nkey},
		{"token", "NATS_TOKEN", &f.token},
		{"user", "NATS_USER", &f.user},
		{"password", "NATS_PASSWORD", &f.password},
		{"tlsca", "NATS_CA", &f.ca},
		{"tlscert", "NATS_CERT", &f.cert},
		{"tlskey", "NATS_KEY", &f.key},
	} {
		if c.Flags().Changed(e.flag) {
			continue
		}
		if v, ok := lookup(e.env); ok && v != "" {
			*e.dst = v
		}
	}
	if err := watcher.ValidatePrefix(f.prefix); err != nil {
		return usageError{fmt.Errorf("--prefix: %w", err)}
	}
	if len(splitURLs(f.server)) == 0 {
		return usageError{fmt.Errorf("--server: no server URL")}
	}
	return nil
}

// connect opens a connection named name. The connection reconnects forever;
// its warnings (never a secret) go to stderr. When no server answers yet,
// connect waits for one if wait is set, and fails at once otherwise. A
// server that refuses the client is always an error.
func (f *natsClientFlags) connect(ctx context.Context, name string, stderr io.Writer, wait bool) (*nats.Conn, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if !wait {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	nc, err := publisher.Connect(publisher.ConnConfig{
		URLs: splitURLs(f.server), Name: name,
		CredsFile: f.creds, NKeySeedFile: f.nkey, Token: f.token, User: f.user, Password: f.password,
		CAFile: f.ca, CertFile: f.cert, KeyFile: f.key,
	}, log)
	if err != nil {
		return nil, err
	}
	if nc.Status() == nats.CONNECTED {
		return nc, nil
	}
	if !wait {
		nc.Close()
		return nil, fmt.Errorf("no NATS server reachable at %s (see --server)", publisher.Redact(f.server))
	}
	fmt.Fprintf(stderr, "waiting for NATS at %s ...\n", publisher.Redact(f.server))
	connected := nc.StatusChanged(nats.CONNECTED)
	if nc.Status() != nats.CONNECTED {
		select {
		case <-connected:
		case <-ctx.Done():
			nc.Close()
			return nil, ctx.Err()
		}
	}
	nc.RemoveStatusListener(connected)
	return nc, nil
}

// isTerminal reports whether w is a terminal, for colour.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// wantColor decides on colour: only on a terminal, and never with
// --no-color, NO_COLOR (https://no-color.org) or TERM=dumb.
func wantColor(w io.Writer, noColor bool, lookup func(string) (string, bool)) bool {
	if noColor {
		return false
	}
	if v, ok := lookup("NO_COLOR"); ok && v != "" {
		return false
	}
	if v, _ := lookup("TERM"); strings.EqualFold(v, "dumb") {
		return false
	}
	return isTerminal(w)
}
