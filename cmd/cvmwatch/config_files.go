package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// checkLiteralSecrets refuses the config file at path when it holds the
// secrets named (written in it, not ${VAR}) and group or others can read
// it, unless allowInsecure.
func checkLiteralSecrets(path string, secrets []string, allowInsecure bool) error {
	if len(secrets) == 0 || allowInsecure {
		return nil
	}
	return checkPrivateOr(path, "holds "+strings.Join(secrets, ", "), "take the secrets from the environment (${VAR})")
}

// checkPrivate refuses a file that group or others may read; why says what
// secret it holds.
func checkPrivate(path, why string) error { return checkPrivateOr(path, why, "") }

// checkPrivateOr is checkPrivate offering one more remedy before the flag.
func checkPrivateOr(path, why, remedy string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if remedy != "" {
			remedy += ", or "
		}
		return fmt.Errorf("%s %s but its permissions %04o let others read it: chmod 600 %s, or %spass --allow-insecure-permissions",
			path, why, perm, path, remedy)
	}
	return nil
}

// checkFiles checks the files the config names as run will use them:
// each must be a regular file, and those holding a secret must not be
// readable by group or others (unless allowInsecure). Unless mustExist, a
// file that is missing or unreadable here is only a warning: check-config
// may run on another host or as another user than the daemon, and files
// such as ${CREDENTIALS_DIRECTORY}/nats.creds exist only inside the running
// service; the daemon, where they must be, checks with mustExist.
func (c *Config) checkFiles(allowInsecure, mustExist bool) (errs configErrors, warnings []string) {
	check := func(key, path string, secret bool) {
		if path == "" {
			return
		}
		err := checkReadable(path)
		if !mustExist && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
			warnings = append(warnings, fmt.Sprintf("%s: cannot check it here (%v); it must exist and be readable where cvmwatch runs", key, err))
			return
		}
		if err == nil && secret && !allowInsecure {
			err = checkPrivate(path, "holds a secret")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	for i, a := range c.Accounts {
		if a.Credentials != nil {
			check(fmt.Sprintf("accounts[%d].credentials.profile_file", i), a.Credentials.ProfileFile, true)
		}
	}
	n := c.NATS
	check("nats.creds_file", n.CredsFile, true)
	check("nats.nkey_seed_file", n.NKeySeedFile, true)
	check("nats.tls.ca_file", n.TLS.CAFile, false)
	check("nats.tls.cert_file", n.TLS.CertFile, false)
	check("nats.tls.key_file", n.TLS.KeyFile, true)
	return errs, warnings
}

// checkReadable reports whether path is a regular file this process can
// open for reading. It reads nothing, and it stats before opening, since
// opening a FIFO would block.
func checkReadable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
