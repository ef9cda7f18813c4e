package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmwatch/cvmwatch/store"
)

// `state --config` reads only data_dir and http.listen: the variables the
// rest of the file uses (secrets kept in the daemon's service environment)
// need not be set in the operator's shell.
func TestStateConfigNeedsOnlyItsOwnKeys(t *testing.T) {
	const secret = "s3cr3t-state-6f1e"
	t.Setenv("CVMWATCH_TEST_SET_SECRET", secret)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	st, err := store.Open(filepath.Join(data, "cvmwatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CVMWATCH_TEST_DATA_DIR", data)
	rest := `accounts:
  - name: prod
    regions: [ap-guangzhou, "${CVMWATCH_TEST_UNSET_REGION}"]
    interval: ${CVMWATCH_TEST_UNSET_INTERVAL}
    credentials:
      secret_id: ${CVMWATCH_TEST_UNSET_ID}
      secret_key: "${CVMWATCH_TEST_UNSET_KEY}"
poll: {rate_limit: "${CVMWATCH_TEST_UNSET_RATE}"}
nats:
  url: nats://alice:${CVMWATCH_TEST_UNSET_PASS}@nats.internal:4222
  token: ${CVMWATCH_TEST_SET_SECRET}
`
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := Run(t.Context(), args, &out, &out)
		if strings.Contains(out.String(), secret) {
			t.Errorf("%v printed a secret:\n%s", args, out.String())
		}
		return code, out.String()
	}

	good := write("good.yaml", "data_dir: ${CVMWATCH_TEST_DATA_DIR}\nhttp: {listen: \"127.0.0.1:1\"}\n"+rest)
	if code, out := run("state", "--config", good); code != 0 || !strings.Contains(out, filepath.Join(data, "cvmwatch.db")) {
		t.Errorf("state with unset variables outside its keys: exit %d, want 0 reading the database:\n%s", code, out)
	}
	// run and check-config stay strict about the same file.
	if code, out := run("check-config", "--config", good); code != 1 || !strings.Contains(out, "CVMWATCH_TEST_UNSET_KEY is not set") {
		t.Errorf("check-config: exit %d, want 1 naming the unset variable:\n%s", code, out)
	}

	for _, tc := range []struct{ name, head, want string }{
		{"data_dir", "data_dir: ${CVMWATCH_TEST_UNSET_DIR}\nhttp: {listen: \"127.0.0.1:1\"}\n",
			"data_dir: environment variable CVMWATCH_TEST_UNSET_DIR is not set"},
		{"http.listen", "data_dir: ${CVMWATCH_TEST_DATA_DIR}\nhttp: {listen: \"${CVMWATCH_TEST_UNSET_LISTEN}\"}\n",
			"http.listen: environment variable CVMWATCH_TEST_UNSET_LISTEN is not set"},
		{"bad http.listen", "data_dir: ${CVMWATCH_TEST_DATA_DIR}\nhttp: {listen: nowhere}\n",
			"http.listen: address nowhere: missing port in address"},
		{"unknown key", "data_dir: ${CVMWATCH_TEST_DATA_DIR}\nhttp: {listen: \"127.0.0.1:1\", lisen: x}\n",
			"http.lisen: unknown key"},
	} {
		t.Run("unusable "+tc.name+" is an error", func(t *testing.T) {
			code, out := run("state", "--config", write("bad.yaml", tc.head+rest))
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("state: exit %d, want 1 and %q:\n%s", code, tc.want, out)
			}
		})
	}

	t.Run("a literal secret in a readable file is still refused", func(t *testing.T) {
		p := write("literal.yaml", "data_dir: ${CVMWATCH_TEST_DATA_DIR}\nhttp: {listen: \"127.0.0.1:1\"}\n"+
			strings.Replace(rest, "${CVMWATCH_TEST_SET_SECRET}", secret, 1))
		if code, out := run("state", "--config", p); code != 1 || !strings.Contains(out, "nats.token") {
			t.Errorf("state: exit %d, want 1 naming nats.token:\n%s", code, out)
		}
		if code, out := run("state", "--config", p, "--allow-insecure-permissions"); code != 0 {
			t.Errorf("state --allow-insecure-permissions: exit %d:\n%s", code, out)
		}
	})
}
