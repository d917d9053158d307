package offline

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pingid-ssh/pingid-ssh/config"
)

// Status is the state of a user's offline device file, as handed to the policy in
// offline.status.
type Status string

// The statuses. Store.Status checks, in this order, and stops at the first problem: the
// user name (unreadable), the host key (no_key, insecure, unreadable), the device file
// (missing, insecure, unreadable, corrupt, foreign), the lockout state (unreadable,
// locked_out). Only then is a user ready.
const (
	// StatusUnreadable: the user name is unsafe, or a file or directory could not be read
	// for another reason than the ones below (I/O error, permission denied), or the lockout
	// state could not be read.
	StatusUnreadable Status = "unreadable"
	// StatusNoKey: the host key (offline_key_file) is missing or not HostKeySize bytes.
	StatusNoKey Status = "no_key"
	// StatusInsecure: the host key or the device file is a symlink or not a regular file,
	// is owned by someone other than root, has group or other permissions, or lies in a
	// directory that someone other than root could write.
	StatusInsecure Status = "insecure"
	// StatusMissing: there is no device file for the user.
	StatusMissing Status = "missing"
	// StatusCorrupt: the file is oversized, truncated, damaged, of an unknown version,
	// sealed under another host key, or holds an invalid device list.
	StatusCorrupt Status = "corrupt"
	// StatusForeign: the file is intact but was sealed for another user.
	StatusForeign Status = "foreign"
	// StatusLockedOut: the file is ready but the user is locked out after wrong codes.
	StatusLockedOut Status = "locked_out"
	// StatusReady: the file holds at least one usable device.
	StatusReady Status = "ready"
)

// Options change how a Store trusts files and tells time.
type Options struct {
	// AllowInsecure accepts files and directories owned by the current effective user as
	// well as root. Group and other permissions are refused either way. Tests and demos
	// running unprivileged set it; a production daemon never should.
	AllowInsecure bool
	// Clock returns the current time; nil means time.Now. Lockouts and file ages use it.
	Clock func() time.Time
	// Log receives one line for every file that is not ready and every lockout; it never
	// receives keys, codes or challenges.
	Log zerolog.Logger
}

// Store reads and writes the sealed device files and the lockout state of users. It copies
// what it needs from the config at creation, holds no mutable state of its own, and is safe
// for concurrent use by many goroutines and processes: the lockout state is guarded by a
// file lock, and device files are replaced atomically.
type Store struct {
	cfg         config.Config
	stateDir    string
	maxAttempts int
	lockout     time.Duration
	own         owners
	now         func() time.Time
	log         zerolog.Logger
}

// NewStore returns a Store for cfg's offline_devices_path, offline_key_file, state_dir,
// offline_max_attempts and offline_lockout.
func NewStore(cfg *config.Config, opts Options) *Store {
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	max := cfg.OfflineMaxAttempts
	if max < 1 {
		max = 1
	}
	return &Store{
		cfg:         *cfg,
		stateDir:    filepath.Join(cfg.StateDir, "offline-attempts"),
		maxAttempts: max,
		lockout:     cfg.OfflineLockout,
		own:         owners{allowInsecure: opts.AllowInsecure, euid: uint32(os.Geteuid())},
		now:         now,
		log:         opts.Log.With().Str("component", "offline").Logger(),
	}
}

// Report is what Status tells about a user. It never holds secrets.
type Report struct {
	Status      Status
	Devices     int           // devices in the file; 0 unless the file opened
	Age         time.Duration // time since the file was sealed; 0 unless the file opened
	LockedUntil time.Time     // end of the lockout; zero unless Status is StatusLockedOut
}

// Status reports the user's offline state for the policy, combining the device file with the
// lockout state in the order described with the Status constants. It never fails: every
// problem becomes a status and a log line.
func (s *Store) Status(user string) Report {
	p, st, _ := s.load(user)
	if st != StatusReady {
		return Report{Status: st}
	}
	r := Report{Status: StatusReady, Devices: len(p.Devices), Age: s.age(p.Saved)}
	for _, d := range p.Devices {
		clear(d.Key)
	}

	locked, until, err := s.Locked(user)
	switch {
	case err != nil:
		s.log.Warn().Str("user", user).Str("status", string(StatusUnreadable)).Err(err).
			Msg("lockout state unreadable")
		return Report{Status: StatusUnreadable}
	case locked:
		r.Status, r.LockedUntil = StatusLockedOut, until
	}
	return r
}

func (s *Store) age(saved time.Time) time.Duration {
	if a := s.now().Sub(saved); a > 0 {
		return a
	}
	return 0
}

// Load opens the user's device file and returns its devices when the status is
// StatusReady; otherwise the devices are nil and err says why (for StatusMissing too). Load
// looks at the file only: it does not consult the lockout state, which CheckAttempt
// enforces. The returned keys belong to the caller, who should clear them when done.
func (s *Store) Load(user string) ([]Device, Status, error) {
	p, st, err := s.load(user)
	if st != StatusReady {
		return nil, st, err
	}
	return p.Devices, st, nil
}

// load reads and opens the device file, logging every status but ready.
func (s *Store) load(user string) (filePayload, Status, error) {
	p, st, err := s.loadQuiet(user)
	switch st {
	case StatusReady:
	case StatusMissing:
		s.log.Info().Str("user", user).Str("status", string(st)).Err(err).
			Msg("no offline device file")
	default:
		s.log.Warn().Str("user", user).Str("status", string(st)).Err(err).
			Msg("offline device file not usable")
	}
	return p, st, err
}

func (s *Store) loadQuiet(user string) (filePayload, Status, error) {
	path, err := s.cfg.DevicesPath(user)
	if err != nil {
		return filePayload{}, StatusUnreadable, fmt.Errorf("load devices: %w", err)
	}
	key, st, err := s.hostKey()
	if err != nil {
		return filePayload{}, st, fmt.Errorf("load devices: %w", err)
	}
	defer clear(key)

	data, err := s.own.readFile(path, maxFileSize)
	if err != nil {
		return filePayload{}, fileStatus(err, StatusMissing), fmt.Errorf("load devices: %w", err)
	}
	p, err := openFile(key, user, data)
	switch {
	case errors.Is(err, errForeign):
		return filePayload{}, StatusForeign, fmt.Errorf("load devices: %s: %w", path, err)
	case err != nil:
		return filePayload{}, StatusCorrupt, fmt.Errorf("load devices: %s: %w", path, err)
	}
	return p, StatusReady, nil
}

// hostKey reads offline_key_file.
func (s *Store) hostKey() ([]byte, Status, error) {
	key, err := s.own.readFile(s.cfg.OfflineKeyFile, HostKeySize)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, StatusNoKey, fmt.Errorf("host key: %w", err)
		}
		return nil, fileStatus(err, StatusNoKey), fmt.Errorf("host key: %w", err)
	}
	if len(key) != HostKeySize {
		clear(key)
		return nil, StatusNoKey, fmt.Errorf("host key %s is %d bytes, want %d",
			s.cfg.OfflineKeyFile, len(key), HostKeySize)
	}
	return key, StatusReady, nil
}

// fileStatus maps a readFile error to a status; missing is the status of an absent file.
func fileStatus(err error, missing Status) Status {
	switch {
	case errors.Is(err, errMissing):
		return missing
	case errors.Is(err, errInsecure):
		return StatusInsecure
	case errors.Is(err, errTooLarge):
		return StatusCorrupt
	}
	return StatusUnreadable
}

// resealAfter is how old a device file holding the very devices being saved may be
// before Save writes it again. Within it a repeated login costs a read instead of a
// sealed write with two fsyncs, and Report.Age stays within it of the last login.
const resealAfter = time.Minute

// fresh reports whether the user's file is ready, holds exactly devs, and was sealed
// less than resealAfter ago.
func (s *Store) fresh(user string, devs []Device) bool {
	p, st, _ := s.loadQuiet(user)
	if st != StatusReady {
		return false
	}
	defer func() {
		for _, d := range p.Devices {
			clear(d.Key)
		}
	}()
	if s.age(p.Saved) >= resealAfter || p.Saved.After(s.now()) || len(p.Devices) != len(devs) {
		return false
	}
	for i, d := range p.Devices {
		n := devs[i]
		if d.ID != n.ID || d.Name != n.Name || d.Suite != n.Suite ||
			subtle.ConstantTimeCompare(d.Key, n.Key) != 1 {
			return false
		}
	}
	return true
}

// Save seals devs for user under the host key and replaces the user's device file
// atomically (temporary file, fsync, rename, directory fsync; mode 0600). The parent
// directory is created with mode 0700 when missing, and must be owned by root (or the
// effective user with AllowInsecure) and writable by nobody else. Every device must be
// valid for an offline login (see checkDevice); an empty list removes the user's file so
// that no stale secret stays usable. A file that already holds the same devices and was
// sealed less than a minute ago is left as it is. Save never logs the keys.
func (s *Store) Save(user string, devs []Device) error {
	path, err := s.cfg.DevicesPath(user)
	if err != nil {
		return fmt.Errorf("save devices: %w", err)
	}
	if len(devs) == 0 {
		return s.remove(user, path)
	}
	if err := checkDevices(devs); err != nil {
		return fmt.Errorf("save devices: %w", err)
	}
	if s.fresh(user, devs) {
		return nil
	}
	key, _, err := s.hostKey()
	if err != nil {
		return fmt.Errorf("save devices: %w", err)
	}
	defer clear(key)

	data, err := sealFile(key, filePayload{User: user, Saved: s.now().UTC(), Devices: devs})
	if err != nil {
		return fmt.Errorf("save devices: %w", err)
	}
	if err := s.own.writeFileAtomic(path, data, true); err != nil {
		return fmt.Errorf("save devices: %w", err)
	}
	s.log.Info().Str("user", user).Int("devices", len(devs)).Msg("offline device file saved")
	return nil
}

// remove deletes the user's device file, relative to its checked directory, so that a
// directory swapped for a link cannot point the removal at another file.
func (s *Store) remove(user, path string) error {
	dirfd, err := s.own.openDir(filepath.Dir(path))
	if errors.Is(err, errMissing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove devices: %w", err)
	}
	defer unix.Close(dirfd)
	err = unix.Unlinkat(dirfd, filepath.Base(path), 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove devices: %s: %w", path, err)
	}
	s.log.Info().Str("user", user).Msg("no offline devices; device file removed")
	return nil
}
