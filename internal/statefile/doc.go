// Package statefile keeps the licence client's persisted state: one small
// file per process, written atomically, held under an OS file lock, and
// sealed with AES-256-GCM so that a copied or hand-edited file is rejected.
//
// # Overview
//
// [Acquire] locks a slot in a state directory and returns a [*File]. A
// [File] reads and replaces the raw bytes of its slot; [Seal] and [Open]
// turn the caller's plaintext into the sealed container stored there and
// back, under a key from [DeriveKey]. [Memory] is an in-memory stand-in with
// the same behaviour, and [Slot] is the interface both satisfy. The package
// does not know what the state means: that is the license package's job.
//
// # Slots and locking
//
// Several processes of one product may share a state directory. Each takes
// its own slot: base, base-1, base-2 and so on, up to the number of slots the
// caller allows. A slot is held by an exclusive, non-blocking OS lock on a
// companion "<slot>.lock" file: flock(2) on Linux, macOS and the BSDs,
// LockFileEx on Windows. The lock belongs to an open file, not to a process,
// so two Files in one process never share a slot either. The OS drops the
// lock when the process exits, so a crash never leaves a slot stuck. The
// lock files themselves are never deleted: deleting a lock file while
// another process opens it would let two processes hold "the same" lock.
//
// flock over NFS is emulated with per-process POSIX locks on Linux; on such
// a mount two Files in one process could share a slot. Keep state on a local
// disk.
//
// # Atomic writes
//
// [File.Write] writes a temporary file next to the slot (mode 0600), syncs
// it, closes it, renames it over the slot and then syncs the directory
// (except on Windows, which has no directory sync). A reader therefore sees
// the old contents or the new ones, never a mix, even after a power cut. If
// any step fails the old contents stay and the temporary file is removed; a
// temporary file left by a crash is removed by the next [Acquire] of that
// slot. A state file over [MaxSize] bytes is never written and, if found, is
// reported as corrupt.
//
// A file that cannot be read as state is moved aside by [File.Quarantine]
// to "<slot>.corrupt-<unix nanoseconds>", keeping the three newest copies
// for diagnosis.
//
// # Sealing
//
// The container is
//
//	"LKST" | version (1) | nonce (12 random bytes) | AES-256-GCM ciphertext | tag (16)
//
// with additional data "LKST" | version | aad, so the header and the
// caller's context are authenticated too. [Open] checks every length before
// slicing and reports anything wrong (short, altered, wrong key, wrong aad,
// unknown magic or version) as [ErrCorrupt].
//
// Be clear about what this buys. The key is derived from values the client
// itself knows (product, licence, machine identity), so anyone who reads the
// SDK and the machine can derive it too. Sealing stops casual tampering, and
// a state file copied to another machine or edited by hand is rejected; it
// does not stop a determined reverse engineer. The server stays the
// authority.
//
// # Errors
//
// [ErrNotExist], [ErrCorrupt] and [ErrLocked] are the categories, matched
// with errors.Is. Every error from this package is a [*Error] naming the
// operation and the slot's file name (never the directory, key or contents).
// Operating-system causes stay in the chain, so errors.Is(err,
// fs.ErrPermission) works. A File or Memory used after Release returns an
// error matching fs.ErrClosed.
//
// # Shared files
//
// [JoinShared] opens a state file that several processes share (shared
// sessions): [SharedName] names it after the product and licence. Every
// member holds a shared lock on "<name>.members"; one member at a time, the
// leader, holds an exclusive lock on "<name>.lock" ([Shared.TryLead]) and
// is the only writer. Writes are atomic as for [File.Write];
// [Shared.Changed] tells a reader from one stat whether to read again.
//
// # Testing
//
// Use [NewMemory] where a test needs a state store but not a disk. The
// package's own tests re-execute the test binary to check the lock between
// two processes and to crash a writer between its temporary write and the
// rename.
package statefile
