package session

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"

	"github.com/pingid-ssh/pingid-ssh/engine"
)

// LookupUser resolves name through NSS. The name that comes back is the account's own
// spelling, which may differ from the one typed (case-insensitive directories). An unknown
// user is not an error: it comes back with Exists false and no groups. Any other failure
// (NSS or a directory down) is an error, so that a session denies rather than deciding
// with missing groups. A group id with no name is listed as its number.
//
// NSS cannot always tell "no such user" from "directory unreachable": with sssd, for one,
// an unreachable directory may read as an unknown user. Overrides that deny by group
// should therefore also deny users that do not exist, or be written as allow-lists.
func LookupUser(name string) (engine.User, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return engine.User{Name: name, Groups: []string{}}, nil
	}
	if err != nil {
		return engine.User{}, fmt.Errorf("look up user: %w", err)
	}

	uid, err := strconv.ParseInt(u.Uid, 10, 64)
	if err != nil {
		return engine.User{}, fmt.Errorf("look up user: uid %q: %w", u.Uid, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return engine.User{}, fmt.Errorf("look up groups of %s: %w", name, err)
	}
	groups := make([]string, 0, len(gids))
	for _, gid := range gids {
		g, err := user.LookupGroupId(gid)
		var unknownGroup user.UnknownGroupIdError
		switch {
		case errors.As(err, &unknownGroup):
			// A gid without a name still belongs to the user: keep it, as its number.
			groups = append(groups, gid)
		case err != nil:
			return engine.User{}, fmt.Errorf("look up group %s: %w", gid, err)
		default:
			groups = append(groups, g.Name)
		}
	}
	return engine.User{Name: u.Username, Exists: true, UID: &uid, Groups: groups}, nil
}
