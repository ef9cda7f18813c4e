package cvm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// maxProfileFile caps a profile file.
const maxProfileFile = 1 << 20

// loadProfile reads secret_id and secret_key of section profile (default
// "default") from an INI file like ~/.tencentcloud/credentials. A file that
// group or others may access is refused unless allowInsecure. Errors name
// the file, the section and the missing key, never a value.
func loadProfile(path, profile string, allowInsecure bool) (Credential, error) {
	if profile == "" {
		profile = DefaultProfile
	}
	source := fmt.Sprintf("profile file %s [%s]", path, profile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profile file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("profile file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("profile file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && !allowInsecure && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("profile file %s: permissions %04o are too open (group or others may access it); chmod 600 %s, or allow an insecure file explicitly", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxProfileFile+1))
	if err != nil {
		return nil, fmt.Errorf("profile file %s: %w", path, err)
	}
	if len(data) > maxProfileFile {
		return nil, fmt.Errorf("profile file %s: larger than %d bytes", path, maxProfileFile)
	}
	sections, err := parseINI(data)
	if err != nil {
		return nil, fmt.Errorf("profile file %s: %w", path, err)
	}
	sec, ok := sections[profile]
	if !ok {
		return nil, fmt.Errorf("%s: no section [%s]", source, profile)
	}
	for _, key := range []string{"secret_id", "secret_key"} {
		if sec[key] == "" {
			return nil, fmt.Errorf("%s: missing %s", source, key)
		}
	}
	return newStaticCredential(source, sec["secret_id"], sec["secret_key"]), nil
}

// parseINI parses the small INI dialect of Tencent's credentials file:
// [section] headers, key = value lines, blank lines and comments starting
// with # or ;. Keys are lower-cased; values are trimmed and lose one pair of
// surrounding quotes; a later key wins. Errors give a line number, never the
// line, which may hold a secret.
func parseINI(data []byte) (map[string]map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	sections := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxProfileFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: unterminated section header", n)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if name == "" {
				return nil, fmt.Errorf("line %d: empty section name", n)
			}
			if sections[name] == nil {
				sections[name] = map[string]string{}
			}
			cur = sections[name]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			return nil, fmt.Errorf("line %d: empty key", n)
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: key outside a [section]", n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		cur[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sections, nil
}
