// Package statefile keeps the licence client's persisted state: one small
// file per process, written atomically, held under an OS file lock, and
// sealed with AES-256-GCM so that a copied or hand-edited file is rejected.
//
// # Overview
//
// [Acquire] locks a slot in a state directory and returns a [*File]. A
// [File] reads and replaces the raw bytes of its slot; [Seal] and [Open]
// turn the caller's plaintext into the sealed container stored there and
// back, under a key from [DeriveKey]. The package does not know what the
// state means: that is the license package's job.
//
// # File names
//
// Every file of one licence of one product starts with the same base name,
// [BaseName](product, licence):
//
//	"lk-" + hex(SHA-256("licensekit state name v1" 0x00 be64(len(product)) product licence)[:16])
//
// for example "lk-cba2203c05d2021802137a97228dfeed". The licence key is a
// secret, so it is hashed, never written. Clients of different licences or
// products sharing one state directory therefore never open, lock or move
// each other's files. In a directory:
//
//	<base>               slot 0's sealed state (the first live client of the licence)
//	<base>-<i>           slot i's sealed state, i = 1, 2, ... (further live clients of the licence)
//	<slot>.lock          the slot's lock file (never deleted)
//	<slot>.tmp-<random>  a write in progress (removed by the next Acquire after a crash)
//	<slot>.corrupt-<ns>  a state moved aside by Quarantine (three kept)
//
// Files that belong to a licence rather than to one client take the base
// name plus a suffix of their own (a shared session: "<base>-shared");
// files that belong to one state file take that slot's name plus a dotted
// suffix (an anti-rollback record: "<slot>.anchor"). No slot name can
// collide with either.
//
// Only regular files are opened. A symlink, FIFO, socket, device or
// directory where a state file belongs is reported as corrupt without being
// followed or opened for reading (opens use O_NOFOLLOW and O_NONBLOCK on
// Unix), so a planted FIFO cannot block a read, and Quarantine moves it
// aside. A lock file that is not a regular file makes Acquire fail.
//
// # Slots and locking
//
// Several processes of one licence may share a state directory; each takes
// its own slot ([Acquire]) under an exclusive, non-blocking OS lock on
// "<slot>.lock": flock(2) on Linux, macOS and the BSDs, LockFileEx on
// Windows. The OS drops the lock when the process exits, so a crash never
// leaves a slot stuck. Lock files are never deleted: deleting one while
// another process opens it would let two processes hold "the same" lock.
// flock over NFS is emulated with per-process POSIX locks on Linux; on such
// a mount two Files in one process could share a slot. Keep state on a local
// disk.
//
// [File.Write] replaces a slot atomically (temporary file, sync, rename,
// directory sync), so a reader sees the old contents or the new ones, never
// a mix, even after a power cut. [Seal] and [Open] describe the sealed
// container. Be clear about what sealing buys: the key is derived from
// values the client itself knows (product, licence, machine identity), so
// anyone who reads the SDK and the machine can derive it too. Sealing stops
// casual tampering, and a state file copied to another machine or edited by
// hand is rejected; it does not stop a determined reverse engineer. The
// server stays the authority.
//
// # Errors
//
// [ErrNotExist], [ErrCorrupt] and [ErrLocked] are the categories, matched
// with errors.Is. Every error from this package is a [*Error] naming the
// operation and the slot's file name (never the directory, key or contents).
// Operating-system causes stay in the chain, so errors.Is(err,
// fs.ErrPermission) works. A File used after Release returns an error
// matching fs.ErrClosed.
//
// # Shared files
//
// [JoinShared] opens a state file that several processes share (shared
// sessions), named by [SharedName]; one member at a time, the leader,
// writes it (see [Shared]).
package statefile
