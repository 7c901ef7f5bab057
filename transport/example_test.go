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

func ExampleClient_Do() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":true}`)
	}))
	defer srv.Close()

	c, err := transport.New(srv.URL + "/api/v2")
	if err != nil {
		panic(err)
	}
	defer c.CloseIdleConnections()

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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"success":false,"error":"license revoked"}`)
	}))
	defer srv.Close()

	c, err := transport.New(srv.URL + "/api/v2")
	if err != nil {
		panic(err)
	}
	defer c.CloseIdleConnections()

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
