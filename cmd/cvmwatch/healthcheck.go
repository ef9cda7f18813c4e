package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Defaults of "cvmwatch healthcheck": the daemon's liveness endpoint on the
// default http.listen.
const (
	defaultHealthURL     = "http://127.0.0.1:9090/healthz"
	defaultHealthTimeout = 3 * time.Second
	// healthBodyMax caps how much of the answer is read and shown.
	healthBodyMax = 1024
)

// newHealthcheckCommand returns "cvmwatch healthcheck".
func newHealthcheckCommand() *cobra.Command {
	var (
		target  string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "healthcheck [--url URL]",
		Short: "Probe the daemon's health endpoint: exit 0 if it answers 2xx, 1 otherwise",
		Long: `GET the URL (by default the daemon's /healthz on the default http.listen) and
exit 0 on a 2xx answer, 1 on anything else (another status, no answer within
--timeout, connection refused), printing the reason and the start of the body.
It is the container's HEALTHCHECK: the runtime image has no shell and no curl.
Proxy settings of the environment are ignored.`,
		Example: `  cvmwatch healthcheck
  cvmwatch healthcheck --url http://127.0.0.1:9090/readyz --timeout 1s
  # Dockerfile: HEALTHCHECK CMD ["/cvmwatch", "healthcheck"]`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("--url %q: want an http:// or https:// URL with a host", target)}
			}
			if u.User != nil {
				return usageError{errors.New("--url: credentials in the URL are not supported")}
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout: %v must be positive", timeout)}
			}
			return healthcheck(c.Context(), u.String(), timeout, c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&target, "url", defaultHealthURL, "health endpoint to probe")
	c.Flags().DurationVar(&timeout, "timeout", defaultHealthTimeout, "give up after this long")
	return c
}

// healthcheck GETs target and returns nil only for a 2xx answer.
func healthcheck(ctx context.Context, target string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "cvmwatch-healthcheck/"+version)
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// A health endpoint answers itself; a redirect is not health.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("unhealthy: %s did not answer within %v", target, timeout)
		}
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, healthBodyMax))
	text := strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if text != "" {
			return fmt.Errorf("unhealthy: %s answered %s: %s", target, resp.Status, text)
		}
		return fmt.Errorf("unhealthy: %s answered %s", target, resp.Status)
	}
	if text != "" {
		fmt.Fprintf(out, "healthy: %s %s\n", resp.Status, text)
	} else {
		fmt.Fprintf(out, "healthy: %s\n", resp.Status)
	}
	return nil
}
