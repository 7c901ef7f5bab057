package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/licensekit/licensekit-go/transport"
)

// exampleClient returns a Client of a test server that answers every
// request with status and body, and a function that stops both.
func exampleClient(status int, body string) (*transport.Client, func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	c, err := transport.New(srv.URL + "/api/v2")
	if err != nil {
		panic(err)
	}
	return c, func() { c.CloseIdleConnections(); srv.Close() }
}

func ExampleClient_Do() {
	c, done := exampleClient(http.StatusOK, `{"success":true}`)
	defer done()

	resp, err := c.Do(context.Background(), transport.Request{
		Endpoint: "extend_session",
		Body:     []byte(`{"key":"...","data":"..."}`),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, string(resp.Body))
	// Output: 200 {"success":true}
}

func ExampleError() {
	c, done := exampleClient(http.StatusForbidden, `{"success":false,"error":"license revoked"}`)
	defer done()

	resp, err := c.Do(context.Background(), transport.Request{
		Endpoint: "begin_session",
		Retry:    transport.RetryUnsent,
	})
	fmt.Println(err)
	fmt.Println("status error:", errors.Is(err, transport.ErrStatus))
	fmt.Println("unreachable:", errors.Is(err, transport.ErrUnreachable))
	if te, ok := errors.AsType[*transport.Error](err); ok {
		fmt.Println(te.Status, string(resp.Body))
	}
	// Output:
	// transport: begin_session: HTTP 403 after 1 attempt
	// status error: true
	// unreachable: false
	// 403 {"success":false,"error":"license revoked"}
}
