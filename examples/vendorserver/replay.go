package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// ReplyStore keeps the replies to answered requests beyond the process: a
// request repeated after a restart, or sent again to another instance that
// shares the store, gets the stored reply and is not processed again. The
// in-memory envelope.Guard in front of it checks the timestamp window and
// answers the repeats it saw itself; the store is the record that outlives
// it. Its methods take the transaction that also holds the request's
// effects, so that an effect is never kept without its reply, nor a reply
// without its effect.
type ReplyStore interface {
	// Lookup returns the stored reply to request id, or nil when there is
	// none. An id stored for other data (digest) is an error matching
	// envelope.ErrReplayed.
	Lookup(ctx context.Context, tx *sql.Tx, id [envelope.RequestIDSize]byte, digest [32]byte) (*envelope.Reply, error)
	// Keep stores the reply to request id, whose timestamp is t; carried
	// marks a carried (offline) request, remembered for the longer carried
	// window (FORMAT.md "Carried requests").
	Keep(ctx context.Context, tx *sql.Tx, id [envelope.RequestIDSize]byte, t time.Time, carried bool, digest [32]byte, r envelope.Reply) error
	// Prune forgets the replies to ordinary requests with timestamps before
	// before, and to carried ones before beforeCarried: a repeat of one of
	// them is stale anyway.
	Prune(ctx context.Context, tx *sql.Tx, before, beforeCarried time.Time) error
}

// sqlReplies is the ReplyStore in the replies table.
type sqlReplies struct{}

var errReplayed = fmt.Errorf("vendorserver: request id reused by another request: %w", envelope.ErrReplayed)

func (sqlReplies) Lookup(ctx context.Context, tx *sql.Tx, id [envelope.RequestIDSize]byte, digest [32]byte) (*envelope.Reply, error) {
	var stored []byte
	var r envelope.Reply
	err := tx.QueryRowContext(ctx, `SELECT digest, status, body FROM replies WHERE id = ?`, id[:]).
		Scan(&stored, &r.Status, &r.Body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	case !bytes.Equal(stored, digest[:]):
		return nil, errReplayed
	}
	return &r, nil
}

func (sqlReplies) Keep(ctx context.Context, tx *sql.Tx, id [envelope.RequestIDSize]byte, t time.Time, carried bool, digest [32]byte, r envelope.Reply) error {
	c := 0
	if carried {
		c = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO replies (id, ts, digest, status, body, carried) VALUES (?, ?, ?, ?, ?, ?)`,
		id[:], t.Unix(), digest[:], r.Status, r.Body, c)
	return err
}

func (sqlReplies) Prune(ctx context.Context, tx *sql.Tx, before, beforeCarried time.Time) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM replies WHERE (carried = 0 AND ts < ?) OR (carried = 1 AND ts < ?)`,
		before.Unix(), beforeCarried.Unix())
	return err
}

// answer processes one admitted request exactly once across restarts and
// instances: in one transaction it forgets replies older than the window,
// returns the stored reply when the request was answered before, and
// otherwise runs process and, when keep is set (the request proved a licence
// or a session: its scope), keeps its reply with its effects. A request that
// proved nothing is refused without a change and leaves nothing behind.
func (st *Store) answer(ctx context.Context, replies ReplyStore, o *envelope.Opened, digest [32]byte,
	oldest, oldestCarried time.Time, keep bool, process func(*sql.Tx) (int, []byte, error)) (status int, body []byte, err error) {
	err = st.tx(ctx, func(tx *sql.Tx) error {
		if err := replies.Prune(ctx, tx, oldest, oldestCarried); err != nil {
			return err
		}
		r, err := replies.Lookup(ctx, tx, o.ID, digest)
		if err != nil {
			return err
		}
		if r != nil {
			status, body = r.Status, r.Body
			return nil
		}
		if status, body, err = process(tx); err != nil || !keep {
			return err
		}
		return replies.Keep(ctx, tx, o.ID, o.Time, o.Carried, digest, envelope.Reply{Status: status, Body: body})
	})
	return status, body, err
}
