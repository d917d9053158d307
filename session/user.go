package session

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"

	"github.com/pingid-ssh/pingid-ssh/engine"
)

// LookupUser resolves name through NSS. An unknown user is not an error: it comes back
// with Exists false and no groups. Any other failure (NSS or a directory down) is an error,
// so that a session denies rather than deciding with missing groups.
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
		if err != nil {
			return engine.User{}, fmt.Errorf("look up group %s: %w", gid, err)
		}
		groups = append(groups, g.Name)
	}
	return engine.User{Name: name, Exists: true, UID: &uid, Groups: groups}, nil
}
