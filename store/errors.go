package store

import "errors"

// ErrLocked is wrapped by the error Open returns when another process (or
// another Open in this process) holds the store file and did not release it
// within Options.LockTimeout.
var ErrLocked = errors.New("store file locked by another cvmwatch")

// ErrCorrupt is wrapped by every error that reports a store file, or a value
// in it, that cannot be read: not a bbolt file, truncated, failing bbolt's
// consistency check, or holding a value that does not decode. Open refuses
// such a file and leaves it exactly as it was.
var ErrCorrupt = errors.New("store file corrupt")

// ErrNotOurs is wrapped by the error Open returns for a valid bbolt file that
// does not carry cvmwatch's format marker. Open leaves it exactly as it was.
var ErrNotOurs = errors.New("not a cvmwatch store file")

// ErrNewerFormat is wrapped by the error Open returns for a store file written
// in a format version newer than this build reads. Open leaves it exactly as
// it was.
var ErrNewerFormat = errors.New("store format newer than this cvmwatch")
