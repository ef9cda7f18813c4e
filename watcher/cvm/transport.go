package cvm

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// errResponseTooLarge is returned by a capped body read past its limit. The
// SDK turns it into ClientError.ParseJsonError, which is retried.
var errResponseTooLarge = errors.New("response body too large")

// cappedTransport caps every response body: the SDK reads bodies whole with
// no limit of its own.
type cappedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: Content-Length %d > %d", errResponseTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &cappedBody{r: resp.Body, left: t.max}
	return resp, nil
}

type cappedBody struct {
	r    io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe one byte: a body of exactly the cap is fine.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.r.Close() }
