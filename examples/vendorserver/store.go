package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite" // the pure-Go SQLite driver: no cgo, so CGO_ENABLED=0 builds keep working
	sqlite3 "modernc.org/sqlite/lib"
)

// Store keeps the server's state in one SQLite file: licences, registered
// instances, live sessions and the replies to recent requests (the replay
// cache). Every change is a transaction, so a restart, or a crash, loses
// nothing that was answered. Several server processes may share one file on
// one host (SQLite locks it); servers on several hosts need a shared
// database server instead (docs/server.md, "Several instances").
type Store struct {
	db *sql.DB
}

// Errors of the administrative operations.
var (
	ErrNoLicence = errors.New("vendorserver: no such licence")
	ErrIssued    = errors.New("vendorserver: licence already issued")
	ErrBadValue  = errors.New("vendorserver: invalid value")
)

// Defaults of a licence issued without them.
const (
	DefaultSession = 10 * time.Minute // longest session a client gets
	DefaultGrace   = 24 * time.Hour   // validation_grace_period sent to clients
)

const schema = `
CREATE TABLE IF NOT EXISTS licences (
	product     TEXT NOT NULL,
	key         TEXT NOT NULL,
	features    TEXT NOT NULL,
	seats       INTEGER NOT NULL,  -- machines with a live session at once; 0: no limit
	session_max INTEGER NOT NULL,  -- seconds: the longest session a client gets
	revoked     INTEGER NOT NULL,
	issued      INTEGER NOT NULL,
	PRIMARY KEY (product, key)
);
CREATE TABLE IF NOT EXISTS instances (
	guid       TEXT PRIMARY KEY,
	identity   BLOB NOT NULL UNIQUE, -- SHA-256 of licence, hardware and user
	product    TEXT NOT NULL,
	key        TEXT NOT NULL,
	host       TEXT NOT NULL,
	registered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
	token_hash BLOB PRIMARY KEY,    -- SHA-256 of the token: the file holds no usable token
	id         TEXT NOT NULL UNIQUE, -- a name for the session in listings
	product    TEXT NOT NULL,
	key        TEXT NOT NULL,
	instance   TEXT NOT NULL,
	begun      INTEGER NOT NULL,
	lapses     INTEGER NOT NULL      -- Unix seconds
);
CREATE INDEX IF NOT EXISTS sessions_by_licence ON sessions (product, key, lapses);
CREATE TABLE IF NOT EXISTS replies (
	id     BLOB PRIMARY KEY, -- the envelope's request id
	ts     INTEGER NOT NULL, -- the request's timestamp, Unix seconds
	digest BLOB NOT NULL,    -- SHA-256 of the request's data
	status INTEGER NOT NULL,
	body   BLOB NOT NULL,    -- the reply exactly as sent (sealed when it was)
	carried INTEGER NOT NULL DEFAULT 0 -- 1: a carried (offline) request, kept for envelope.CarriedWindow
);
CREATE INDEX IF NOT EXISTS replies_by_time ON replies (ts);
`

// OpenStore opens (creating when missing) the database file at path. Its
// directory is created with mode 0700: the file holds licence keys.
func OpenStore(path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("vendorserver: database path: %w", ErrBadValue)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("vendorserver: database: %w", err)
	}
	// busy_timeout makes a second process wait for the lock instead of
	// failing; _txlock=immediate takes the write lock when a transaction
	// begins, so that two transactions never both read and then both write.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("vendorserver: database: %w", err)
	}
	// WAL (kept in the file) lets readers run beside the writer. Switching a
	// new file to it needs the file to itself, and SQLite answers "busy"
	// then without waiting, so processes that open a new file at once
	// (TestProcessesShareOneDatabase) retry for as long as busy_timeout.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err = db.Exec("PRAGMA journal_mode=WAL")
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			break
		}
	}
	if err == nil {
		_, err = db.Exec(schema)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("vendorserver: database %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("vendorserver: database: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (st *Store) Close() error { return st.db.Close() }

// tx runs fn in one transaction and commits it when fn returns nil.
func (st *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Licence is one product licence the server grants.
type Licence struct {
	ProductGUID string `json:"product"`
	Key         string `json:"key"`
	Features    string `json:"features"`
	// Seats is how many machines may hold a live session at once; 0 means
	// no limit. Several sessions of one machine take one seat.
	Seats int `json:"seats"`
	// Session is the longest session a client gets: a client that asks for
	// a shorter one (the request's duration) gets what it asked for. Zero
	// means DefaultSession.
	Session time.Duration `json:"session_ns"`
	Revoked bool          `json:"revoked"`
	// LiveSessions is filled by Licences: sessions not ended or lapsed.
	LiveSessions int `json:"live_sessions"`
}

func (l *Licence) check() error {
	switch {
	case l.ProductGUID == "" || l.Key == "":
		return fmt.Errorf("%w: a licence needs a product and a key", ErrBadValue)
	case l.Seats < 0:
		return fmt.Errorf("%w: seats must be 0 (no limit) or more", ErrBadValue)
	case l.Session < 0 || (l.Session > 0 && l.Session < time.Second):
		return fmt.Errorf("%w: session must be at least 1s", ErrBadValue)
	}
	if l.Session == 0 {
		l.Session = DefaultSession
	}
	l.Session = l.Session.Truncate(time.Second)
	return nil
}

// Issue adds a licence. It fails with ErrIssued when the licence exists
// (change it with Set, Revoke or Reinstate).
func (st *Store) Issue(ctx context.Context, l Licence, now time.Time) error {
	if err := l.check(); err != nil {
		return err
	}
	return st.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO licences VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, l.ProductGUID, l.Key, l.Features, l.Seats,
			int64(l.Session/time.Second), l.Revoked, now.Unix())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrIssued
		}
		return nil
	})
}

// Change is what Set changes in a licence; nil fields stay as they are.
type Change struct {
	Features *string        `json:"features,omitempty"`
	Seats    *int           `json:"seats,omitempty"`
	Session  *time.Duration `json:"session_ns,omitempty"`
	Revoked  *bool          `json:"revoked,omitempty"`
}

// Set changes a licence. Revoking takes effect at each client's next
// request (begin_session or extend_session); a new session length or seat
// count at the next begin_session or extend_session.
func (st *Store) Set(ctx context.Context, product, key string, c Change) error {
	return st.tx(ctx, func(tx *sql.Tx) error {
		l, err := licenceTx(ctx, tx, product, key)
		if err != nil {
			return err
		}
		if c.Features != nil {
			l.Features = *c.Features
		}
		if c.Seats != nil {
			l.Seats = *c.Seats
		}
		if c.Session != nil {
			if *c.Session == 0 {
				return fmt.Errorf("%w: session must be at least 1s", ErrBadValue)
			}
			l.Session = *c.Session
		}
		if c.Revoked != nil {
			l.Revoked = *c.Revoked
		}
		if err := l.check(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE licences SET features = ?, seats = ?, session_max = ?, revoked = ?
			WHERE product = ? AND key = ?`, l.Features, l.Seats, int64(l.Session/time.Second), l.Revoked, product, key)
		return err
	})
}

// licenceTx reads one licence; ErrNoLicence when there is none.
func licenceTx(ctx context.Context, tx *sql.Tx, product, key string) (*Licence, error) {
	l := Licence{ProductGUID: product, Key: key}
	var secs int64
	err := tx.QueryRowContext(ctx, `SELECT features, seats, session_max, revoked FROM licences
		WHERE product = ? AND key = ?`, product, key).Scan(&l.Features, &l.Seats, &secs, &l.Revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoLicence
	}
	if err != nil {
		return nil, err
	}
	l.Session = time.Duration(secs) * time.Second
	return &l, nil
}

// Licences lists every licence with its number of live sessions at now.
func (st *Store) Licences(ctx context.Context, now time.Time) ([]Licence, error) {
	return query(ctx, st.db, `SELECT l.product, l.key, l.features, l.seats, l.session_max, l.revoked,
		(SELECT COUNT(*) FROM sessions s WHERE s.product = l.product AND s.key = l.key AND s.lapses > ?)
		FROM licences l ORDER BY l.product, l.key`, func(rows *sql.Rows, l *Licence) error {
		var secs int64
		err := rows.Scan(&l.ProductGUID, &l.Key, &l.Features, &l.Seats, &secs, &l.Revoked, &l.LiveSessions)
		l.Session = time.Duration(secs) * time.Second
		return err
	}, now.Unix())
}

// query runs a SELECT and returns its rows, each read by scan.
func query[T any](ctx context.Context, db *sql.DB, q string, scan func(*sql.Rows, *T) error, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Instance is a registered machine and user.
type Instance struct {
	GUID        string    `json:"guid"`
	ProductGUID string    `json:"product"`
	Key         string    `json:"key"`
	Host        string    `json:"host"`
	Registered  time.Time `json:"registered"`
}

// Instances lists the registered instances.
func (st *Store) Instances(ctx context.Context) ([]Instance, error) {
	return query(ctx, st.db, `SELECT guid, product, key, host, registered FROM instances
		ORDER BY registered, guid`, func(rows *sql.Rows, in *Instance) error {
		var reg int64
		err := rows.Scan(&in.GUID, &in.ProductGUID, &in.Key, &in.Host, &reg)
		in.Registered = time.Unix(reg, 0).UTC()
		return err
	})
}

// Session is a live session. Its token is not kept (only a hash of it), so
// a listing never shows one.
type Session struct {
	ID          string    `json:"id"`
	ProductGUID string    `json:"product"`
	Key         string    `json:"key"`
	Instance    string    `json:"instance"`
	Begun       time.Time `json:"begun"`
	Lapses      time.Time `json:"lapses"`
}

// Sessions lists the sessions live at now.
func (st *Store) Sessions(ctx context.Context, now time.Time) ([]Session, error) {
	return query(ctx, st.db, `SELECT id, product, key, instance, begun, lapses FROM sessions
		WHERE lapses > ? ORDER BY begun, id`, func(rows *sql.Rows, s *Session) error {
		var begun, lapses int64
		err := rows.Scan(&s.ID, &s.ProductGUID, &s.Key, &s.Instance, &begun, &lapses)
		s.Begun, s.Lapses = time.Unix(begun, 0).UTC(), time.Unix(lapses, 0).UTC()
		return err
	}, now.Unix())
}

// FreeSeat ends every session of one instance, so that its seat is free
// for another machine at once instead of when the sessions lapse (a machine
// that crashed, or was replaced). It returns how many sessions it ended. A
// client of the instance that still runs finds its token unknown at its
// next renewal and begins a new session, taking a seat again if one is
// free.
func (st *Store) FreeSeat(ctx context.Context, instance string) (int, error) {
	res, err := st.db.ExecContext(ctx, `DELETE FROM sessions WHERE instance = ?`, instance)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Counts returns how many rows each table holds, for tests and -h output.
func (st *Store) Counts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, t := range []string{"licences", "instances", "sessions", "replies"} {
		var n int
		if err := st.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t).Scan(&n); err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte("vendorserver session token\x00" + token))
	return h[:]
}
