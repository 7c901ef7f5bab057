package licensetest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing/iotest"
)

// Transport returns an in-memory http.RoundTripper that hands each request
// straight to the server's handler: no socket, no goroutine. It serves every
// URL whatever its host, so it works before Start and inside a
// testing/synctest bubble, where loopback sockets never count as durably
// blocked. Added latency waits on a timer and honours the request's context,
// so it runs on the bubble's fake time.
//
// It behaves like a connection to the server:
//   - while the server is down in DownRefuse mode, or after Close,
//     RoundTrip fails with a *net.OpError{Op: "dial"} matching
//     syscall.ECONNREFUSED (on Windows, WSAECONNREFUSED, as a real dial
//     there reports);
//   - while down in DownReset mode, or for FaultDrop, it fails with a
//     *net.OpError{Op: "read"} matching syscall.ECONNRESET (on Windows,
//     WSAECONNRESET);
//   - for FaultCutBody, reading the body fails with io.ErrUnexpectedEOF;
//   - when the request's context ends during added latency, it fails with
//     the context's error and the request is not processed.
//
// Match on the Op rather than the errno for portable code.
//
// The RoundTripper is safe for concurrent use and always closes the
// request body.
func (s *Server) Transport() http.RoundTripper { return memTransport{s} }

type memTransport struct{ s *Server }

// memAddr is the address in the errors of the in-memory transport.
var memAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}

// refused and reset are the errors of a refused dial and of a reset
// connection.
func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: memAddr, Err: os.NewSyscallError(syscallConnect, errnoRefused)}
}

func reset() error {
	return &net.OpError{Op: "read", Net: "tcp", Addr: memAddr, Err: os.NewSyscallError(syscallRead, errnoReset)}
}

// RoundTrip implements http.RoundTripper.
func (t memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	var readErr error
	if req.Body != nil {
		body, readErr = io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
		req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	if readErr != nil {
		return nil, readErr
	}
	if down, mode := t.s.faults.isDown(); down && mode != DownUnavailable {
		if mode == DownReset {
			return nil, reset()
		}
		return nil, refused()
	}
	ctx, done, ok := t.s.flight.begin(req.Context())
	if !ok {
		return nil, refused()
	}
	o := t.s.handle(ctx, req.Method, req.URL.Path, bytes.NewReader(body))
	done()
	switch o.action {
	case actAbandon:
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		fallthrough
	case actDrop:
		return nil, reset()
	}
	resp := &http.Response{
		Status:        strconv.Itoa(o.status) + " " + http.StatusText(o.status),
		StatusCode:    o.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        o.header,
		ContentLength: int64(len(o.body)),
		Body:          io.NopCloser(bytes.NewReader(o.body)),
		Request:       req,
	}
	resp.Header.Set("Content-Length", strconv.Itoa(len(o.body)))
	if o.action == actCut {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(o.body[:len(o.body)/2]), iotest.ErrReader(io.ErrUnexpectedEOF)))
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp, nil
}
