package licensetest

import (
	"cmp"
	"container/heap"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/indexheap"
	"github.com/licensekit/licensekit-go/internal/wire"
)

// apiError is a refusal the server sends in the spec's failure shape.
type apiError struct {
	status int
	msg    string
}

func refuse(status int, msg string) *apiError { return &apiError{status: status, msg: msg} }

type licenseID struct{ product, key string }

type licenseRec struct {
	License
	live      int // live sessions
	instances []*instanceRec
	exact     map[string]*instanceRec
}

// effective returns the duration of a session for a request that asked for
// reqSeconds (0 = nothing asked).
func (l *licenseRec) effective(reqSeconds int64) time.Duration {
	if reqSeconds <= 0 {
		return l.SessionDuration
	}
	return min(time.Duration(reqSeconds)*time.Second, cmp.Or(l.MaxDuration, l.SessionDuration))
}

func (l *licenseRec) control(d time.Duration) wire.ControlOptions {
	return wire.ControlOptions{
		SessionDuration:       int64(d / time.Second),
		ValidationGracePeriod: int64(l.GracePeriod / time.Second),
	}
}

type instanceRec struct {
	Instance
	lic *licenseRec
	seq uint64 // registration order
}

type sessionRec struct {
	Session
	lic   *licenseRec
	index int    // in the expiry heap
	seq   uint64 // issue order
}

// maxLapsed bounds the memory of lapsed tokens; beyond it they are forgotten
// and reported as unknown.
const maxLapsed = 100000

// store holds the licences, instances and sessions, guarded by mu.
type store struct {
	mu        sync.Mutex
	match     Match
	rotate    bool
	licenses  map[licenseID]*licenseRec
	instances map[string]*instanceRec
	sessions  map[string]*sessionRec
	lapsed    map[string]struct{}
	expiry    indexheap.Heap[*sessionRec] // live sessions, earliest expiry first
	seq       uint64                      // the last registration or session issued
	refuse    refusals
}

func newStore(match Match, rotate bool, texts RefusalTexts) *store {
	return &store{
		match:     match,
		rotate:    rotate,
		refuse:    newRefusals(texts),
		licenses:  make(map[licenseID]*licenseRec),
		instances: make(map[string]*instanceRec),
		sessions:  make(map[string]*sessionRec),
		lapsed:    make(map[string]struct{}),
		expiry: indexheap.Heap[*sessionRec]{
			Before: func(a, b *sessionRec) bool { return a.Expires.Before(b.Expires) },
			Index:  func(s *sessionRec) *int { return &s.index },
		},
	}
}

// reap ends every session that lapsed at or before now. The caller holds mu.
func (st *store) reap(now time.Time) {
	for st.expiry.Len() > 0 && !now.Before(st.expiry.Items[0].Expires) {
		s := heap.Pop(&st.expiry).(*sessionRec)
		delete(st.sessions, s.Token)
		s.lic.live--
		if len(st.lapsed) >= maxLapsed {
			clear(st.lapsed)
		}
		st.lapsed[s.Token] = struct{}{}
	}
}

// update calls f on a licence under mu, or returns ErrUnknownLicense.
func (st *store) update(product, key string, f func(*licenseRec)) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec := st.licenses[licenseID{product, key}]
	if rec == nil {
		return ErrUnknownLicense
	}
	f(rec)
	return nil
}

// activeLicense reaps at now and finds a licence that is neither revoked
// nor expired. The caller holds mu.
func (st *store) activeLicense(now time.Time, product, key string) (*licenseRec, *apiError) {
	st.reap(now)
	rec := st.licenses[licenseID{product, key}]
	if rec == nil {
		return nil, st.refuse.unknownLicense
	}
	if err := st.refuse.state[rec.State]; err != nil {
		return nil, err
	}
	return rec, nil
}

// exactKey is the identity of a machine and user under Exact matching.
func exactKey(m wire.Machine, name, email string) string {
	macs := make([]string, 0, len(m.MACAddresses))
	for _, a := range m.MACAddresses {
		macs = append(macs, strings.ToLower(a))
	}
	slices.Sort(macs)
	macs = slices.Compact(macs)
	var b strings.Builder
	for _, s := range append([]string{m.CPUID, m.MBSerial, m.VolumeHash, m.HostName, name, email}, macs...) {
		b.WriteString(strconv.Quote(s))
	}
	return b.String()
}

// score counts the KOfN components of a and b that are present and equal.
func score(a Machine, b wire.Machine) int {
	n := 0
	for _, p := range [][2]string{
		{a.CPUID, b.CPUID}, {a.MBSerial, b.MBSerial}, {a.VolumeHash, b.VolumeHash}, {a.HostName, b.HostName},
	} {
		if p[0] != "" && p[0] == p[1] {
			n++
		}
	}
	for _, x := range a.MACAddresses {
		if x != "" && slices.ContainsFunc(b.MACAddresses, func(y string) bool { return strings.EqualFold(x, y) }) {
			n++
			break
		}
	}
	return n
}

// register, begin, extend and end run a request. The caller holds mu.
func (st *store) register(now time.Time, ts wire.Timestamp, skew time.Duration, req *wire.RegisterRequest, guid string) (*wire.RegisterReply, *apiError) {
	lic, err := st.activeLicense(now, req.ProductGUID, req.LicenseKey)
	if err != nil {
		return nil, err
	}
	key := exactKey(req.Machine, req.Name, req.Email)
	var inst *instanceRec
	if st.match == Exact {
		inst = lic.exact[key]
	} else {
		best := 0
		for _, c := range lic.instances {
			if c.Name != req.Name || c.Email != req.Email {
				continue
			}
			if sc := score(c.Machine, req.Machine); sc >= int(st.match) && sc > best {
				inst, best = c, sc
			}
		}
	}
	if inst == nil {
		st.seq++
		inst = &instanceRec{
			Instance: Instance{
				GUID:              guid,
				ProductGUID:       req.ProductGUID,
				LicenseKey:        req.LicenseKey,
				Machine:           Machine(req.Machine),
				Name:              req.Name,
				Email:             req.Email,
				UserHash:          req.UserHash,
				FirstRegisteredAt: now,
			}.clone(),
			lic: lic,
			seq: st.seq,
		}
		lic.instances = append(lic.instances, inst)
		if _, dup := lic.exact[key]; !dup {
			lic.exact[key] = inst
		}
		st.instances[guid] = inst
	}
	return &wire.RegisterReply{
		Success:           true,
		Time:              ts,
		GUID:              inst.GUID,
		ControlOptions:    lic.control(lic.SessionDuration),
		FirstRegisteredAt: wire.Timestamp{Raw: wire.FormatTime(inst.FirstRegisteredAt.Add(skew))},
	}, nil
}

func (st *store) begin(now time.Time, ts wire.Timestamp, req *wire.BeginRequest, token, sessionKey string) (*wire.BeginReply, *apiError) {
	lic, err := st.activeLicense(now, req.ProductGUID, req.LicenseKey)
	if err != nil {
		return nil, err
	}
	inst := st.instances[req.InstanceGUID]
	if inst == nil || inst.lic != lic {
		return nil, st.refuse.unknownInstance
	}
	if lic.Seats > 0 && lic.live >= lic.Seats {
		return nil, st.refuse.seatLimitFor(lic.live, lic.Seats)
	}
	d := lic.effective(req.Duration)
	st.seq++
	s := &sessionRec{
		Session: Session{Token: token, SessionKey: sessionKey, InstanceGUID: inst.GUID, ProductGUID: lic.ProductGUID,
			LicenseKey: lic.Key, Started: now, Expires: now.Add(d), Duration: d},
		lic: lic,
		seq: st.seq,
	}
	st.sessions[token] = s
	heap.Push(&st.expiry, s)
	lic.live++
	return &wire.BeginReply{
		Status:         SessionStatus,
		Time:           ts,
		SessionKey:     sessionKey,
		Token:          token,
		Features:       lic.Features,
		ControlOptions: lic.control(d),
	}, nil
}

// lookup reaps at now and finds a live session by token. The caller holds
// mu.
func (st *store) lookup(now time.Time, token string) (*sessionRec, *apiError) {
	st.reap(now)
	if s := st.sessions[token]; s != nil {
		return s, nil
	}
	if _, ok := st.lapsed[token]; ok {
		return nil, st.refuse.lapsed
	}
	return nil, st.refuse.unknownToken
}

func (st *store) extend(now time.Time, ts wire.Timestamp, req *wire.ExtendRequest, newToken string) (*wire.ExtendReply, *apiError) {
	s, err := st.lookup(now, req.Token)
	if err != nil {
		return nil, err
	}
	if err := st.refuse.state[s.lic.State]; err != nil {
		return nil, err
	}
	d := s.lic.effective(req.Duration)
	s.Duration = d
	s.Expires = now.Add(d)
	s.Extensions++
	heap.Fix(&st.expiry, s.index)
	if st.rotate {
		delete(st.sessions, s.Token)
		s.Token = newToken
		st.sessions[newToken] = s
	}
	return &wire.ExtendReply{
		Status:         SessionStatus,
		Time:           ts,
		Token:          s.Token,
		ControlOptions: s.lic.control(d),
	}, nil
}

func (st *store) end(now time.Time, ts wire.Timestamp, req *wire.EndRequest) (*wire.EndReply, *apiError) {
	s, err := st.lookup(now, req.Token)
	if err != nil {
		return nil, err
	}
	heap.Remove(&st.expiry, s.index)
	delete(st.sessions, s.Token)
	s.lic.live--
	return &wire.EndReply{Time: ts}, nil
}

// scope is what an opened request proved before the replay cache admits it
// (envelope.Scope): a register or begin names a licence that exists, an
// extend or end a live session token. A request that proves neither (anyone
// holding a copy of the product can seal one) gets the empty scope: it is
// refused without any change and never remembered, so no flood of them takes
// room from a customer.
func (st *store) scope(ep string, pt []byte) envelope.Scope {
	// The same decoding as processing uses, so that the proof and the
	// request processed are the same.
	o, err := parseObject(pt)
	if err != nil {
		return envelope.Scope{}
	}
	product, key, token := o.str("product_guid", true), o.str("license_key", true), o.str("token", true)
	st.mu.Lock()
	defer st.mu.Unlock()
	switch ep {
	case Register, Begin:
		if product != "" && key != "" && st.licenses[licenseID{product, key}] != nil {
			return envelope.Scope{Partition: "licence\x00" + product + "\x00" + key}
		}
	case Extend, End:
		if s := st.sessions[token]; token != "" && s != nil {
			return envelope.Scope{Partition: "session\x00" + strconv.FormatUint(s.seq, 10)}
		}
	}
	return envelope.Scope{}
}
