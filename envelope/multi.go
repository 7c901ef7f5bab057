package envelope

import "errors"

// rawOpener is implemented by this package's openers, so that MultiOpener can
// decode once and dispatch on version and key id.
type rawOpener interface {
	Opener
	// precheck validates raw's header without cryptography; nil means raw is
	// addressed to this opener.
	precheck(raw []byte) error
	// openRaw opens raw, which precheck has accepted.
	openRaw(in Incoming, raw []byte) (*Opened, error)
}

type multiOpener struct {
	own     []rawOpener
	foreign []Opener
}

// MultiOpener returns an Opener for key rotation: it holds several openers
// (public-key and shared-secret, old and new keys) and hands each request to
// the one whose key id the request carries. Nil openers are skipped.
//
// Openers from other packages (custom schemes) cannot be matched by key id;
// they are tried in the given order after this package's openers found no
// match, and the first success wins. When nothing matches, the error matches
// ErrUnauthentic ("unknown key id") or ErrUnsupportedVersion, or is the last
// custom opener's error. The result is safe for concurrent use if every
// opener is.
func MultiOpener(openers ...Opener) Opener {
	m := &multiOpener{}
	for _, o := range openers {
		switch o := o.(type) {
		case nil:
		case *multiOpener:
			m.own = append(m.own, o.own...)
			m.foreign = append(m.foreign, o.foreign...)
		case rawOpener:
			m.own = append(m.own, o)
		default:
			m.foreign = append(m.foreign, o)
		}
	}
	return m
}

func (m *multiOpener) Open(in Incoming) (*Opened, error) {
	var err error
	if len(m.own) > 0 || len(m.foreign) == 0 {
		var raw []byte
		raw, err = decodeRequest(in.Data)
		if err == nil {
			o, err := m.pick(raw)
			if err != nil {
				return nil, err
			}
			return o.openRaw(in, raw)
		}
	}
	for _, o := range m.foreign {
		var op *Opened
		op, err = o.Open(in)
		if err == nil {
			return op, nil
		}
	}
	return nil, err
}

// pick returns the opener raw is addressed to or, failing that, the most
// specific reason why none is: a header error beats "unknown key id", which
// beats "other mode".
func (m *multiOpener) pick(raw []byte) (rawOpener, error) {
	var best error
	bestMiss := missMode + 1
	for _, o := range m.own {
		err := o.precheck(raw)
		if err == nil {
			return o, nil
		}
		miss := missNone
		if e, ok := errors.AsType[*Error](err); ok {
			miss = e.miss
		}
		if miss < bestMiss {
			best, bestMiss = err, miss
		}
	}
	if best == nil {
		best = &Error{Op: "open", Reason: "no opener configured", Err: ErrUnsupportedVersion, miss: missMode}
	}
	return nil, best
}
