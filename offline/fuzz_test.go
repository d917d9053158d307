package offline

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

var fuzzKey = bytes.Repeat([]byte{0x5a}, HostKeySize)

// FuzzOpenFile feeds arbitrary bytes to the device file decoder. It must never panic, and
// whatever it accepts must be a valid device list sealed for the user asked for.
func FuzzOpenFile(f *testing.F) {
	p := filePayload{User: "alice", Saved: time.Unix(1_800_000_000, 0).UTC(),
		Devices: []Device{testDevice("a1"), testDevice("a2")}}
	good, err := sealFile(fuzzKey, p)
	if err != nil {
		f.Fatal(err)
	}
	p.User = "bob"
	foreign, err := sealFile(fuzzKey, p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(foreign)
	f.Add(good[:len(good)-1])
	f.Add(good[:headerFixed+5])
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	f.Add(flip(good, 6))

	plain, err := json.Marshal(filePayload{User: "alice", Devices: []Device{testDevice("a")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Add([]byte(`{"user":"alice","devices":[{"id":"a","suite":"` + DefaultSuite +
		`","key":"MDEyMzQ1Njc4OWFiY2RlZg=="}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		// As a whole file, and as the plaintext of a correctly sealed one, so that the
		// payload decoder behind the authentication is fuzzed too.
		checkOpen(t, data)
		checkOpen(t, sealRaw(t, "alice", data))
		checkOpen(t, sealRaw(t, "bob", data))
	})
}

func checkOpen(t *testing.T, data []byte) {
	got, err := openFile(fuzzKey, "alice", data)
	if err != nil {
		if !errors.Is(err, errCorrupt) && !errors.Is(err, errForeign) {
			t.Fatalf("unclassified error: %v", err)
		}
		if got.Devices != nil || got.User != "" {
			t.Fatal("devices returned with an error")
		}
		return
	}
	if got.User != "alice" {
		t.Fatalf("accepted a file for %q", got.User)
	}
	if err := checkDevices(got.Devices); err != nil {
		t.Fatalf("accepted invalid devices: %v", err)
	}
}

// sealRaw seals plain as it is, in the file layout, for user.
func sealRaw(t *testing.T, user string, plain []byte) []byte {
	aead, err := newAEAD(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(fileMagic), fileVersion, 0, byte(len(user)))
	out = append(out, user...)
	nonce := make([]byte, nonceSize)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, out[:len(out)-nonceSize])
}

// FuzzParseSuite feeds arbitrary suites and challenges to ParseSuite, NewChallenge and
// Compute. None may panic; an accepted suite must round-trip, produce challenges of its
// length and alphabet, and answers of its number of digits.
func FuzzParseSuite(f *testing.F) {
	for _, s := range []string{DefaultSuite, "OCRA-1:HOTP-SHA1-6:QN08",
		"OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", "OCRA-1:HOTP-SHA512-8:QA10-T1M",
		"OCRA-1:HOTP-SHA512-10:C-QH64-PSHA256-S512-T48H", "OCRA-1:HOTP-SHA1-4:QA04-T30S-S064",
		"OCRA-1:HOTP-SHA1-6:QN08-T1W", "OCRA-1:HOTP-SHA1-6:QN08--", "OCRA-1::"} {
		f.Add(s, "12345678")
	}
	f.Add("OCRA-1:HOTP-SHA256-8:QA08", "CLI22220SRV11110")
	f.Add("OCRA-1:HOTP-SHA1-6:QH08", "0aF")

	f.Fuzz(func(t *testing.T, text, question string) {
		s, err := ParseSuite(text)
		if err != nil {
			if !errors.Is(err, ErrSuite) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if s.String() != text {
			t.Fatalf("String() = %q, parsed %q", s.String(), text)
		}
		again, err := ParseSuite(s.String())
		if err != nil || again != s {
			t.Fatalf("does not round-trip: %v", err)
		}
		if s.Digits < minDigits || s.Digits > maxDigits ||
			s.ChallengeLen < minChallenge || s.ChallengeLen > maxChallenge {
			t.Fatalf("out of range: %+v", s)
		}

		ch, err := NewChallenge(s)
		if err != nil || len(ch) != s.ChallengeLen {
			t.Fatalf("NewChallenge = %q, %v", ch, err)
		}
		in := Input{Counter: 1, Question: ch, PIN: []byte("1234"),
			Session: []byte("s"), Time: time.Unix(1_800_000_000, 0)}
		code, err := s.Compute(key20, in)
		if err != nil || len(code) != s.Digits || NormalizeCode(code) != code {
			t.Fatalf("Compute(own challenge) = %q, %v", code, err)
		}
		if _, ok := VerifyCode([]Device{{ID: "x", Suite: text, Key: key20}}, ch, code); !ok &&
			!s.Counter && s.PIN == "" && s.SessionLen == 0 && s.TimeStep == 0 {
			t.Fatal("VerifyCode refused the device's own answer")
		}

		in.Question = question
		code, err = s.Compute(key20, in)
		if err == nil && len(code) != s.Digits {
			t.Fatalf("Compute(%q) = %q", question, code)
		}
		if err != nil && !errors.Is(err, ErrInput) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}
