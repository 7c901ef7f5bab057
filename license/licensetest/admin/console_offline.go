package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/carried"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The console's offline activation page (docs/offline-activation.md): a
// person uploads a request file that an offline machine wrote, the mock
// posts each carried request to itself, unchanged, through its own v2
// handler (so it sees, checks, logs and answers ordinary v2 requests,
// faults included), and the page offers the reply file for download.

// serveOfflineExchange answers an uploaded request file with its reply file,
// or a JSON error naming what was wrong (nothing is answered in part).
func (a *Handler) serveOfflineExchange(w http.ResponseWriter, r *http.Request) {
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, carried.MaxFileSize))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, adminReply{Error: fmt.Sprintf("licensetest admin: offline: the file is larger than %d bytes", carried.MaxFileSize)})
		return
	}
	reply, summary, err := exchangeCarried(r.Context(), a.s, text)
	if err != nil {
		a.in.Logger.Info("licensetest: offline exchange failed", slog.String("error", err.Error()))
		writeJSON(w, http.StatusBadRequest, adminReply{Error: "licensetest admin: offline: " + err.Error()})
		return
	}
	a.in.Logger.Info("licensetest: offline exchange", slog.String("replies", summary))
	a.addAction("offline exchange: "+summary, "console")
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="licensekit-reply.txt"`)
	_, _ = w.Write(reply)
}

// exchangeCarried posts each carried request of a request file to the
// server's own v2 handler and returns the reply file and a one-line
// summary ("begin_session 200"). A file that does not parse, a request the
// server rejects at the envelope level (too old, say) or does not answer
// (down, a failure injected on the path) is an error: no reply file.
func exchangeCarried(ctx context.Context, s *licensetest.Server, text []byte) ([]byte, string, error) {
	rf, err := carried.ParseRequestFile(text)
	if err != nil {
		return nil, "", fmt.Errorf("not a licensekit offline request file (%s)", strings.TrimPrefix(err.Error(), "carried: "))
	}
	hc := &http.Client{Transport: s.Transport()}
	out := carried.ReplyFile{Product: rf.Product, Created: s.Now().UTC()}
	var summary []string
	for _, q := range rf.Requests {
		body, _ := json.Marshal(wire.Request{Key: s.Info().APIKey, Data: q.Data})
		// The request file's endpoints are checked, so the URL parses.
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://licensetest"+licensetest.BasePath+"/"+q.Endpoint, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("%s: the server did not answer (%v)", q.Endpoint, errors.Unwrap(err))
		}
		rb, err := io.ReadAll(io.LimitReader(resp.Body, envelope.MaxDataSize+64<<10))
		resp.Body.Close()
		if err != nil {
			return nil, "", fmt.Errorf("%s: the reply was cut off", q.Endpoint)
		}
		if rej, ok := envelope.ParseRejection(resp.StatusCode, rb); ok {
			return nil, "", fmt.Errorf("%s: the server rejected the carried request (%s); write a new request file on the offline machine", q.Endpoint, rej.Code)
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || len(rb) == 0 {
			return nil, "", fmt.Errorf("%s: the server did not answer (status %d)", q.Endpoint, resp.StatusCode)
		}
		out.Replies = append(out.Replies, carried.Reply{Endpoint: q.Endpoint, ID: q.ID, Status: resp.StatusCode, Body: rb})
		summary = append(summary, fmt.Sprintf("%s %d", q.Endpoint, resp.StatusCode))
	}
	reply, err := out.Marshal()
	if err != nil {
		return nil, "", err
	}
	return reply, strings.Join(summary, ", "), nil
}
