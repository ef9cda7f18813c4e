package main

import "net"

// HTTPConfig is where metrics and health endpoints are served.
type HTTPConfig struct {
	// Listen is host:port; port 0 picks a free port.
	Listen string `yaml:"listen"`
}

// defaultHTTPListen is http.listen's default, which the README documents.
const defaultHTTPListen = "127.0.0.1:9090"

// defaultHTTP is the http section of a file that leaves it out.
func defaultHTTP() HTTPConfig { return HTTPConfig{Listen: defaultHTTPListen} }

// validate reports the section's problems under key.
func (h HTTPConfig) validate(key string) configErrors {
	var errs configErrors
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		errs.add(key+".listen", "%v", err)
	}
	return errs
}
