package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	good, err := Sign(key, Header{"orgAlias": "org", "token": "tok"}, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
	cases := []struct {
		name string
		text string
		key  []byte
		want error
	}{
		{"good", good, key, nil},
		{"wrong key", good, bytes.Repeat([]byte{2}, 32), ErrSignature},
		{"tampered payload", parts[0] + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"a":2}`)) + "." + parts[2], key,
			ErrSignature},
		{"alg none", noneHeader + "." + parts[1] + ".", key, ErrSignature},
		{"alg none with signature", noneHeader + "." + parts[1] + "." + parts[2], key,
			ErrSignature},
		{"plain JSON", `{"responseBody":{"errorId":200}}`, key, ErrNotJWS},
		{"HTML", "<html>x.y.z</html>", key, ErrNotJWS},
		{"empty", "", key, ErrNotJWS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, payload, err := Verify(tc.key, []byte(tc.text))
			if tc.want == nil {
				if err != nil || string(payload) != `{"a":1}` || h.OrgAlias() != "org" ||
					h["token"] != "tok" {
					t.Fatalf("got (%v, %q, %v)", h, payload, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || payload != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRefusesShortKey(t *testing.T) {
	if _, err := Sign(make([]byte, 16), nil, []byte("{}")); err == nil {
		t.Fatal("signed with a 16-byte key")
	}
}

func TestOrgAliasLegacy(t *testing.T) {
	if got := (Header{"org_alias": "old"}).OrgAlias(); got != "old" {
		t.Fatalf("OrgAlias = %q", got)
	}
}

func TestTimestampRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 4, 17, 30, 1, 234e6, time.UTC)
	got, err := ParseTimestamp(Timestamp(now))
	if err != nil || !got.Equal(now) {
		t.Fatalf("round trip: %s, %v", got, err)
	}
}
