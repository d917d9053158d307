package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/offline"
)

const offlineUsage = `usage:
  pingid-ssh offline init-key [--config FILE | --key-file FILE]
  pingid-ssh offline status --user NAME [--json] [--config FILE]
  pingid-ssh offline unlock --user NAME [--config FILE]
  pingid-ssh offline respond [--suite S] --key HEX --challenge Q [--counter N]
                             [--pin P | --pin-hash HEX] [--session HEX] [--time T]
  pingid-ssh offline enroll --user NAME --id ID --key HEX [--name N] [--suite S]
                            [--config FILE]`

// runOffline dispatches the offline sub-commands: init-key creates the host key, status
// prints a user's offline state, respond computes an OCRA answer as a device would, and
// enroll adds a device to a user's file (for demos), and unlock clears a user's failure
// count and lockout. Exit codes: 0 success (for status: ready), 1 a refused or failed
// operation (for status: any other status), 2 usage or input errors.
func runOffline(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, offlineUsage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(e.stdout, offlineUsage)
		return 0
	case "init-key":
		return offlineInitKey(e, args[1:])
	case "status":
		return offlineStatus(e, args[1:])
	case "respond":
		return offlineRespond(e, args[1:])
	case "enroll":
		return offlineEnroll(e, args[1:])
	case "unlock":
		return offlineUnlock(e, args[1:])
	}
	fmt.Fprintf(e.stderr, "pingid-ssh offline: unknown sub-command %q\n%s\n", args[0],
		offlineUsage)
	return 2
}

// parseOnly parses args into fs and refuses positional arguments. When it returns false,
// code is the exit code: 0 after -h, 2 for a mistake.
func parseOnly(e *env, fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		return flagExit(err), false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "unexpected argument %q\n%s\n", fs.Arg(0), offlineUsage)
		return 2, false
	}
	return 0, true
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func offlineInitKey(e *env, args []string) int {
	fs := newFlagSet(e, "offline init-key")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf naming offline_key_file")
	keyFile := fs.String("key-file", "", "create the key here instead of offline_key_file")
	if code, ok := parseOnly(e, fs, args); !ok {
		return code
	}
	set := setFlags(fs)
	if set["config"] && set["key-file"] {
		fmt.Fprintln(e.stderr, "give --config or --key-file, not both")
		return 2
	}

	path := *keyFile
	if path == "" {
		cfg, err := loadConfig(e, *cfgPath)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			return 2
		}
		path = cfg.OfflineKeyFile
	}
	if err := offline.InitKey(path); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	fmt.Fprintf(e.stdout, "created host key %s (%d bytes, mode 0600)\n", path,
		offline.HostKeySize)
	return 0
}

// statusJSON is the --json form of offline status. It carries no secrets.
type statusJSON struct {
	User        string         `json:"user"`
	Status      offline.Status `json:"status"`
	Devices     int            `json:"devices"`
	AgeSeconds  int64          `json:"age_seconds"`
	LockedUntil *time.Time     `json:"locked_until,omitempty"`
}

func offlineStatus(e *env, args []string) int {
	fs := newFlagSet(e, "offline status")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf to use")
	user := fs.String("user", "", "local user name")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	store, closeLog, code := userStore(e, fs, args, cfgPath, user)
	if store == nil {
		return code
	}
	defer closeLog()

	r := store.Status(*user)
	if *asJSON {
		out := statusJSON{User: *user, Status: r.Status, Devices: r.Devices,
			AgeSeconds: int64(r.Age / time.Second)}
		if !r.LockedUntil.IsZero() {
			until := r.LockedUntil.UTC()
			out.LockedUntil = &until
		}
		data, _ := json.Marshal(out)
		fmt.Fprintln(e.stdout, string(data))
	} else {
		line := fmt.Sprintf("%s: %s", *user, r.Status)
		if r.Status == offline.StatusLockedOut {
			line += " until " + r.LockedUntil.UTC().Format(time.RFC3339)
		}
		if r.Devices > 0 {
			line += fmt.Sprintf(", %d device(s), file age %s", r.Devices,
				r.Age.Truncate(time.Second))
		}
		fmt.Fprintln(e.stdout, line)
	}
	if r.Status != offline.StatusReady {
		return 1
	}
	return 0
}

// openStore loads the config and builds a Store logging to the command's logger.
// validUser checks --user and says what is wrong with it.
func validUser(e *env, user string) bool {
	if err := config.CheckUserName(user); err != nil {
		fmt.Fprintf(e.stderr, "--user: %v\n", err)
		return false
	}
	return true
}

// userStore finishes the flags of a command about one user's offline state: it parses
// args, checks --user and opens the store of the config. A nil store means the command
// ends with code (0 after -h, 2 otherwise); otherwise the caller must call closeLog.
// cfgPath and user are the flags' pointers, read once args are parsed.
func userStore(e *env, fs *flag.FlagSet, args []string, cfgPath, user *string,
) (*offline.Store, func(), int) {
	if code, ok := parseOnly(e, fs, args); !ok {
		return nil, nil, code
	}
	if !validUser(e, *user) {
		return nil, nil, 2
	}
	store, closeLog, ok := openStore(e, *cfgPath)
	if !ok {
		return nil, nil, 2
	}
	return store, closeLog, 0
}

func openStore(e *env, cfgPath string) (*offline.Store, func(), bool) {
	cfg, err := loadConfig(e, cfgPath)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, nil, false
	}
	log, closeLog, err := newLogger(e, cfg)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, nil, false
	}
	store := offline.NewStore(cfg, offline.Options{
		AllowInsecure: loadOptions(e).AllowInsecure,
		Log:           log,
	})
	return store, closeLog, true
}

func offlineRespond(e *env, args []string) int {
	fs := newFlagSet(e, "offline respond")
	suiteText := fs.String("suite", offline.DefaultSuite, "OCRA suite of the device")
	keyHex := fs.String("key", "", "device secret in hex (visible to other local users "+
		"through the process list: for demos and tests only)")
	challenge := fs.String("challenge", "", "challenge as shown; spaces are ignored")
	counter := fs.Uint64("counter", 0, "counter C, for suites with C")
	pin := fs.String("pin", "", "PIN, for suites with P")
	pinHash := fs.String("pin-hash", "", "PIN hash in hex, for suites with P")
	session := fs.String("session", "", "session information in hex, for suites with S")
	at := fs.String("time", "", "time for suites with T: RFC 3339 or Unix seconds "+
		"(default now)")
	if code, ok := parseOnly(e, fs, args); !ok {
		return code
	}

	suite, err := offline.ParseSuite(*suiteText)
	if err != nil {
		fmt.Fprintf(e.stderr, "--suite: %v\n", err)
		return 2
	}
	key, err := hex.DecodeString(*keyHex)
	if err != nil || len(key) == 0 {
		fmt.Fprintln(e.stderr, "--key: want the device secret as hex digits")
		return 2
	}
	defer clear(key)

	in, err := respondInput(setFlags(fs), suite, *challenge, *counter, *pin, *pinHash,
		*session, *at)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	code, err := suite.Compute(key, in)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	fmt.Fprintln(e.stdout, code)
	return 0
}

// respondInput turns the respond flags into an Input, refusing flags the suite does not
// use and requiring those it needs (except --time, which defaults to now).
func respondInput(set map[string]bool, suite offline.Suite, challenge string, counter uint64,
	pin, pinHash, session, at string) (offline.Input, error) {
	in := offline.Input{Question: offline.NormalizeCode(challenge), Counter: counter}
	if in.Question == "" {
		return in, errors.New("--challenge is required")
	}

	uses := map[string]bool{
		"counter": suite.Counter, "pin": suite.PIN != "", "pin-hash": suite.PIN != "",
		"session": suite.SessionLen > 0, "time": suite.TimeStep > 0,
	}
	for _, name := range []string{"counter", "pin", "pin-hash", "session", "time"} {
		if set[name] && !uses[name] {
			return in, fmt.Errorf("--%s: suite %s has no such input", name, suite)
		}
	}
	if suite.Counter && !set["counter"] {
		return in, fmt.Errorf("--counter is required by suite %s", suite)
	}

	if set["pin"] {
		in.PIN = []byte(pin)
	}
	if set["pin-hash"] {
		h, err := hex.DecodeString(pinHash)
		if err != nil {
			return in, errors.New("--pin-hash: not hex")
		}
		in.PINHash = h
	}
	if set["session"] {
		s, err := hex.DecodeString(session)
		if err != nil {
			return in, errors.New("--session: not hex")
		}
		in.Session = s
	}
	if suite.TimeStep > 0 {
		in.Time = time.Now()
		if set["time"] {
			t, err := parseTime(at)
			if err != nil {
				return in, err
			}
			in.Time = t
		}
	}
	return in, nil
}

// parseTime reads Unix seconds or an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--time: %q is neither Unix seconds nor RFC 3339", s)
	}
	return t, nil
}

func offlineEnroll(e *env, args []string) int {
	fs := newFlagSet(e, "offline enroll")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf to use")
	user := fs.String("user", "", "local user name")
	id := fs.String("id", "", "device ID; an existing device with this ID is replaced")
	name := fs.String("name", "", "device name shown to the user")
	suite := fs.String("suite", offline.DefaultSuite, "OCRA suite of the device")
	keyHex := fs.String("key", "", "device secret in hex (for demos and tests only)")
	if code, ok := parseOnly(e, fs, args); !ok {
		return code
	}
	if !validUser(e, *user) {
		return 2
	}
	key, err := hex.DecodeString(*keyHex)
	if err != nil || len(key) == 0 {
		fmt.Fprintln(e.stderr, "--key: want the device secret as hex digits")
		return 2
	}
	defer clear(key)
	dev := offline.Device{ID: *id, Name: *name, Suite: *suite, Key: key}
	if err := offline.CheckDevice(dev); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}

	store, closeLog, ok := openStore(e, *cfgPath)
	if !ok {
		return 2
	}
	defer closeLog()

	devs, st, err := store.Load(*user)
	if st != offline.StatusReady && st != offline.StatusMissing {
		fmt.Fprintf(e.stderr, "existing device file is %s: %v\n", st, err)
		return 1
	}
	kept := devs[:0]
	for _, d := range devs {
		if d.ID != *id {
			kept = append(kept, d)
		}
	}
	kept = append(kept, dev)
	if err := store.Save(*user, kept); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s: %d device(s)\n", *user, len(kept))
	return 0
}

// offlineUnlock clears the user's count of wrong offline codes and any lockout, as an
// administrator does after checking who made the attempts. It leaves the device file alone.
func offlineUnlock(e *env, args []string) int {
	fs := newFlagSet(e, "offline unlock")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf to use")
	user := fs.String("user", "", "local user name")
	store, closeLog, code := userStore(e, fs, args, cfgPath, user)
	if store == nil {
		return code
	}
	defer closeLog()

	// Read before the reset only to say what was cleared; Reset clears whatever the state
	// holds by then, attempts counted in between included.
	failures, err := store.Failures(*user)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	locked, until, err := store.Locked(*user)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	if err := store.Reset(*user); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}

	switch {
	case locked:
		fmt.Fprintf(e.stdout, "%s: cleared %d failed code(s) and the lockout until %s\n",
			*user, failures, until.UTC().Format(time.RFC3339))
	case failures > 0:
		fmt.Fprintf(e.stdout, "%s: cleared %d failed code(s); was not locked out\n", *user,
			failures)
	default:
		fmt.Fprintf(e.stdout, "%s: no failed codes counted, nothing to clear\n", *user)
	}
	return 0
}
