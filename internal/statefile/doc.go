// Package statefile keeps the licence client's persisted state: one small
// file per process, written atomically, held under an OS file lock, and
// sealed with AES-256-GCM so that a copied or hand-edited file is rejected.
//
// [Acquire] locks a slot in a state directory and returns a [*File], which
// reads and replaces the raw bytes of its slot; [Seal] and [Open] turn the
// caller's plaintext into the sealed container stored there and back, under
// a key from [DeriveKey]. What the state means is the license package's job.
//
// # File names
//
// docs/lifecycle.md ("State file naming") gives [BaseName]'s formula and the
// files named after it: "<base>" (slot 0), "<base>-<i>" (slot i), and per
// slot "<slot>.lock", "<slot>.tmp-<random>" and "<slot>.corrupt-<ns>". The
// licence key is hashed, never written, so clients of different licences or
// products sharing a directory never open, lock or move each other's files.
// Files of a licence take the base name plus a suffix of their own
// ("<base>-shared"), files of one state file the slot's name plus a dotted
// suffix ("<slot>.anchor"): no slot name can collide with either.
//
// Only regular files are opened (openFlags): anything else where a state
// file belongs reads as corrupt without being followed or opened for
// reading, so a planted FIFO cannot block a read, and Quarantine moves it
// aside. A lock file that is not a regular file makes Acquire fail and
// Probe report a lock error.
//
// # Slots and locking
//
// Each process of a licence takes its own slot under an exclusive,
// non-blocking OS lock on "<slot>.lock" (flock(2); LockFileEx on Windows),
// which the OS drops when the process exits, so a crash never leaves a slot
// stuck. Lock files are never deleted: deleting one while another process
// opens it would let two processes hold "the same" lock. flock over NFS is
// emulated with per-process POSIX locks on Linux, where two Files in one
// process could then share a slot: keep state on a local disk.
//
// [File.Write] replaces a slot atomically (temporary file, sync, rename,
// directory sync): a reader sees the old contents or the new ones, never a
// mix, even after a power cut. The sealing key derives from values the
// client itself knows, so sealing stops casual tampering and copies, not a
// determined reverse engineer (docs/security.md, "The state file, and what
// it cannot do"); the server stays the authority.
//
// # Errors
//
// [ErrNotExist], [ErrCorrupt] and [ErrLocked] are the categories, matched
// with errors.Is, inside an [*Error] that names no directory, key or
// contents. Operating-system causes stay in the chain (fs.ErrPermission,
// and fs.ErrClosed for a File used after Release).
//
// [JoinShared] opens a state file that several processes share (shared
// sessions), named by [SharedName]; one member at a time, the leader,
// writes it.
package statefile
