package offline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The standard keys of RFC 6287 Appendix C.
var (
	key20 = []byte("12345678901234567890")
	key32 = []byte("12345678901234567890123456789012")
	key64 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

// rfcTime is T = 0x132d0b6 minutes, the time of Appendix C's T1M vectors.
var rfcTime = time.Unix(0x132d0b6*60, 0).UTC()

type vector struct {
	suite   string
	key     []byte
	counter uint64
	q       string
	pin     bool // PIN "1234"
	time    bool // rfcTime
	want    string
}

// rfcVectors is every test vector of RFC 6287 Appendix C, in the order of the RFC.
func rfcVectors() []vector {
	var vs []vector
	add := func(suite string, key []byte, pin, tm bool, rows ...[3]string) {
		for _, r := range rows {
			c := uint64(0)
			for _, ch := range r[0] {
				c = c*10 + uint64(ch-'0')
			}
			vs = append(vs, vector{suite, key, c, r[1], pin, tm, r[2]})
		}
	}

	// C.1 One-way challenge-response.
	add("OCRA-1:HOTP-SHA1-6:QN08", key20, false, false,
		[3]string{"", "00000000", "237653"}, [3]string{"", "11111111", "243178"},
		[3]string{"", "22222222", "653583"}, [3]string{"", "33333333", "740991"},
		[3]string{"", "44444444", "608993"}, [3]string{"", "55555555", "388898"},
		[3]string{"", "66666666", "816933"}, [3]string{"", "77777777", "224598"},
		[3]string{"", "88888888", "750600"}, [3]string{"", "99999999", "294470"})
	add("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", key32, true, false,
		[3]string{"0", "12345678", "65347737"}, [3]string{"1", "12345678", "86775851"},
		[3]string{"2", "12345678", "78192410"}, [3]string{"3", "12345678", "71565254"},
		[3]string{"4", "12345678", "10104329"}, [3]string{"5", "12345678", "65983500"},
		[3]string{"6", "12345678", "70069104"}, [3]string{"7", "12345678", "91771096"},
		[3]string{"8", "12345678", "75011558"}, [3]string{"9", "12345678", "08522129"})
	add("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", key32, true, false,
		[3]string{"", "00000000", "83238735"}, [3]string{"", "11111111", "01501458"},
		[3]string{"", "22222222", "17957585"}, [3]string{"", "33333333", "86776967"},
		[3]string{"", "44444444", "86807031"})
	add("OCRA-1:HOTP-SHA512-8:C-QN08", key64, false, false,
		[3]string{"0", "00000000", "07016083"}, [3]string{"1", "11111111", "63947962"},
		[3]string{"2", "22222222", "70123924"}, [3]string{"3", "33333333", "25341727"},
		[3]string{"4", "44444444", "33203315"}, [3]string{"5", "55555555", "34205738"},
		[3]string{"6", "66666666", "44343969"}, [3]string{"7", "77777777", "51946085"},
		[3]string{"8", "88888888", "20403879"}, [3]string{"9", "99999999", "31409299"})
	add("OCRA-1:HOTP-SHA512-8:QN08-T1M", key64, false, true,
		[3]string{"", "00000000", "95209754"}, [3]string{"", "11111111", "55907591"},
		[3]string{"", "22222222", "22048402"}, [3]string{"", "33333333", "24218844"},
		[3]string{"", "44444444", "36209546"})

	// C.2 Mutual challenge-response: server and client computations.
	add("OCRA-1:HOTP-SHA256-8:QA08", key32, false, false,
		[3]string{"", "CLI22220SRV11110", "28247970"},
		[3]string{"", "CLI22221SRV11111", "01984843"},
		[3]string{"", "CLI22222SRV11112", "65387857"},
		[3]string{"", "CLI22223SRV11113", "03351211"},
		[3]string{"", "CLI22224SRV11114", "83412541"})
	add("OCRA-1:HOTP-SHA256-8:QA08", key32, false, false,
		[3]string{"", "SRV11110CLI22220", "15510767"},
		[3]string{"", "SRV11111CLI22221", "90175646"},
		[3]string{"", "SRV11112CLI22222", "33777207"},
		[3]string{"", "SRV11113CLI22223", "95285278"},
		[3]string{"", "SRV11114CLI22224", "28934924"})
	add("OCRA-1:HOTP-SHA512-8:QA08", key64, false, false,
		[3]string{"", "CLI22220SRV11110", "79496648"},
		[3]string{"", "CLI22221SRV11111", "76831980"},
		[3]string{"", "CLI22222SRV11112", "12250499"},
		[3]string{"", "CLI22223SRV11113", "90856481"},
		[3]string{"", "CLI22224SRV11114", "12761449"})
	add("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", key64, true, false,
		[3]string{"", "SRV11110CLI22220", "18806276"},
		[3]string{"", "SRV11111CLI22221", "70020315"},
		[3]string{"", "SRV11112CLI22222", "01600026"},
		[3]string{"", "SRV11113CLI22223", "18951020"},
		[3]string{"", "SRV11114CLI22224", "32528969"})

	// C.3 Plain signature.
	add("OCRA-1:HOTP-SHA256-8:QA08", key32, false, false,
		[3]string{"", "SIG10000", "53095496"}, [3]string{"", "SIG11000", "04110475"},
		[3]string{"", "SIG12000", "31331128"}, [3]string{"", "SIG13000", "76028668"},
		[3]string{"", "SIG14000", "46554205"})
	add("OCRA-1:HOTP-SHA512-8:QA10-T1M", key64, false, true,
		[3]string{"", "SIG1000000", "77537423"}, [3]string{"", "SIG1100000", "31970405"},
		[3]string{"", "SIG1200000", "10235557"}, [3]string{"", "SIG1300000", "95213541"},
		[3]string{"", "SIG1400000", "65360607"})
	return vs
}

func (v vector) input() Input {
	in := Input{Counter: v.counter, Question: v.q}
	if v.pin {
		in.PIN = []byte("1234")
	}
	if v.time {
		in.Time = rfcTime
	}
	return in
}

func TestRFC6287Vectors(t *testing.T) {
	vs := rfcVectors()
	if len(vs) != 70 {
		t.Fatalf("have %d vectors, Appendix C has 70", len(vs))
	}
	for _, v := range vs {
		name := v.suite + "/" + v.q
		if v.counter != 0 || strings.Contains(v.suite, ":C-") {
			name += "/C" + string(rune('0'+v.counter))
		}
		t.Run(name, func(t *testing.T) {
			s, err := ParseSuite(v.suite)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Compute(v.key, v.input())
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want {
				t.Errorf("got %s, want %s", got, v.want)
			}
		})
	}
}

func TestPINHashEqualsPIN(t *testing.T) {
	// SHA1("1234"), as printed in RFC 6287 Appendix C.
	hash := []byte{0x71, 0x10, 0xed, 0xa4, 0xd0, 0x9e, 0x06, 0x2a, 0xa5, 0xe4,
		0xa3, 0x90, 0xb0, 0xa5, 0x72, 0xac, 0x0d, 0x2c, 0x02, 0x20}
	s, err := ParseSuite("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Compute(key32, Input{Counter: 9, Question: "12345678", PINHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	if got != "08522129" {
		t.Errorf("got %s, want 08522129", got)
	}
}

func TestParseSuite(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Suite // text is filled in from in
	}{
		{"default", DefaultSuite, Suite{Hash: SHA256, Digits: 6, Challenge: Numeric,
			ChallengeLen: 12}},
		{"everything", "OCRA-1:HOTP-SHA512-10:C-QH64-PSHA256-S512-T48H", Suite{Hash: SHA512,
			Digits: 10, Counter: true, Challenge: Hex, ChallengeLen: 64, PIN: SHA256,
			SessionLen: 512, TimeStep: 48 * time.Hour}},
		{"any order after Q", "OCRA-1:HOTP-SHA1-4:QA04-T30S-S064-PSHA512", Suite{Hash: SHA1,
			Digits: 4, Challenge: Alphanumeric, ChallengeLen: 4, PIN: SHA512,
			SessionLen: 64, TimeStep: 30 * time.Second}},
		{"days", "OCRA-1:HOTP-SHA1-6:QN08-T99D", Suite{Hash: SHA1, Digits: 6,
			Challenge: Numeric, ChallengeLen: 8, TimeStep: 99 * 24 * time.Hour}},
		{"weeks", "OCRA-1:HOTP-SHA1-6:QN08-T1W", Suite{Hash: SHA1, Digits: 6,
			Challenge: Numeric, ChallengeLen: 8, TimeStep: 7 * 24 * time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSuite(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.text = tt.in
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

func TestParseSuiteRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"two parts", "OCRA-1:HOTP-SHA1-6"},
		{"four parts", "OCRA-1:HOTP-SHA1-6:QN08:X"},
		{"version 2", "OCRA-2:HOTP-SHA1-6:QN08"},
		{"lower case", "ocra-1:hotp-sha1-6:qn08"},
		{"TOTP", "OCRA-1:TOTP-SHA1-6:QN08"},
		{"SHA3", "OCRA-1:HOTP-SHA3-6:QN08"},
		{"3 digits", "OCRA-1:HOTP-SHA1-3:QN08"},
		{"11 digits", "OCRA-1:HOTP-SHA1-11:QN08"},
		{"0 digits (raw HMAC)", "OCRA-1:HOTP-SHA1-0:QN08"},
		{"signed digits", "OCRA-1:HOTP-SHA1-+6:QN08"},
		{"no challenge", "OCRA-1:HOTP-SHA1-6:C"},
		{"challenge first missing", "OCRA-1:HOTP-SHA1-6:PSHA1-QN08"},
		{"challenge format X", "OCRA-1:HOTP-SHA1-6:QX08"},
		{"challenge 03", "OCRA-1:HOTP-SHA1-6:QN03"},
		{"challenge 65", "OCRA-1:HOTP-SHA1-6:QN65"},
		{"challenge one digit", "OCRA-1:HOTP-SHA1-6:QN8"},
		{"challenge three digits", "OCRA-1:HOTP-SHA1-6:QN008"},
		{"counter after Q", "OCRA-1:HOTP-SHA1-6:QN08-C"},
		{"PIN hash MD5", "OCRA-1:HOTP-SHA1-6:QN08-PMD5"},
		{"session 000", "OCRA-1:HOTP-SHA1-6:QN08-S000"},
		{"session 513", "OCRA-1:HOTP-SHA1-6:QN08-S513"},
		{"session two digits", "OCRA-1:HOTP-SHA1-6:QN08-S64"},
		{"time 0M", "OCRA-1:HOTP-SHA1-6:QN08-T0M"},
		{"time 60S", "OCRA-1:HOTP-SHA1-6:QN08-T60S"},
		{"time 49H", "OCRA-1:HOTP-SHA1-6:QN08-T49H"},
		{"time 53W", "OCRA-1:HOTP-SHA1-6:QN08-T53W"},
		{"time unit Y", "OCRA-1:HOTP-SHA1-6:QN08-T1Y"},
		{"time without step", "OCRA-1:HOTP-SHA1-6:QN08-TM"},
		{"P twice", "OCRA-1:HOTP-SHA1-6:QN08-PSHA1-PSHA256"},
		{"empty field", "OCRA-1:HOTP-SHA1-6:QN08--T1M"},
		{"trailing dash", "OCRA-1:HOTP-SHA1-6:QN08-"},
		{"unknown field", "OCRA-1:HOTP-SHA1-6:QN08-X1"},
		{"too long", "OCRA-1:HOTP-SHA1-6:QN08-" + strings.Repeat("T1M", 50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSuite(tt.in)
			if !errors.Is(err, ErrSuite) {
				t.Fatalf("ParseSuite(%q) = %v, want an ErrSuite", tt.in, err)
			}
		})
	}
}

func TestComputeRejects(t *testing.T) {
	tests := []struct {
		name  string
		suite string
		key   []byte
		in    Input
	}{
		{"zero suite", "", key20, Input{Question: "12345678"}},
		{"empty key", "OCRA-1:HOTP-SHA1-6:QN08", nil, Input{Question: "12345678"}},
		{"empty challenge", "OCRA-1:HOTP-SHA1-6:QN08", key20, Input{}},
		{"letters in numeric", "OCRA-1:HOTP-SHA1-6:QN08", key20, Input{Question: "1234abcd"}},
		{"space in numeric", "OCRA-1:HOTP-SHA1-6:QN08", key20, Input{Question: "1234 5678"}},
		{"sign in numeric", "OCRA-1:HOTP-SHA1-6:QN08", key20, Input{Question: "-12345678"}},
		{"g in hex", "OCRA-1:HOTP-SHA1-6:QH08", key20, Input{Question: "0123456g"}},
		{"space in alpha", "OCRA-1:HOTP-SHA1-6:QA08", key20, Input{Question: "SIG 1000"}},
		{"non-ASCII alpha", "OCRA-1:HOTP-SHA1-6:QA08", key20, Input{Question: "SIG1000\xc3"}},
		{"challenge too long", "OCRA-1:HOTP-SHA1-6:QN04", key20, Input{Question: "123456789"}},
		{"no PIN", "OCRA-1:HOTP-SHA1-6:QN08-PSHA1", key20, Input{Question: "12345678"}},
		{"PIN and hash", "OCRA-1:HOTP-SHA1-6:QN08-PSHA1", key20,
			Input{Question: "12345678", PIN: []byte("1"), PINHash: make([]byte, 20)}},
		{"short PIN hash", "OCRA-1:HOTP-SHA1-6:QN08-PSHA256", key20,
			Input{Question: "12345678", PINHash: make([]byte, 20)}},
		{"no session", "OCRA-1:HOTP-SHA1-6:QN08-S064", key20, Input{Question: "12345678"}},
		{"long session", "OCRA-1:HOTP-SHA1-6:QN08-S004", key20,
			Input{Question: "12345678", Session: make([]byte, 5)}},
		{"no time", "OCRA-1:HOTP-SHA1-6:QN08-T1M", key20, Input{Question: "12345678"}},
		{"time before 1970", "OCRA-1:HOTP-SHA1-6:QN08-T1M", key20,
			Input{Question: "12345678", Time: time.Unix(-60, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Suite
			if tt.suite != "" {
				var err error
				if s, err = ParseSuite(tt.suite); err != nil {
					t.Fatal(err)
				}
			}
			code, err := s.Compute(tt.key, tt.in)
			if !errors.Is(err, ErrInput) || code != "" {
				t.Fatalf("Compute = %q, %v; want an ErrInput", code, err)
			}
		})
	}
}

func TestComputeInputs(t *testing.T) {
	// Inputs the suite names change the answer; those it does not name are ignored.
	s, err := ParseSuite("OCRA-1:HOTP-SHA256-8:C-QH10-PSHA256-S016-T30S")
	if err != nil {
		t.Fatal(err)
	}
	base := Input{Counter: 7, Question: "0a1B2c3D4e", PIN: []byte("0000"),
		Session: []byte("session"), Time: time.Unix(1_800_000_000, 0)}
	ref, err := s.Compute(key32, base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Input)
		same   bool
	}{
		{"counter", func(in *Input) { in.Counter++ }, false},
		{"question", func(in *Input) { in.Question = "0a1B2c3D4f" }, false},
		{"hex case", func(in *Input) { in.Question = "0A1b2C3d4E" }, true},
		{"PIN", func(in *Input) { in.PIN = []byte("0001") }, false},
		{"session", func(in *Input) { in.Session = []byte("sessioN") }, false},
		{"session left padding", func(in *Input) {
			in.Session = append([]byte{0, 0}, in.Session...)
		}, true},
		{"same time step", func(in *Input) { in.Time = in.Time.Add(29 * time.Second) }, true},
		{"next time step", func(in *Input) { in.Time = in.Time.Add(30 * time.Second) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.change(&in)
			got, err := s.Compute(key32, in)
			if err != nil {
				t.Fatal(err)
			}
			if (got == ref) != tt.same {
				t.Errorf("got %s, reference %s, want same=%v", got, ref, tt.same)
			}
		})
	}

	plain, err := ParseSuite("OCRA-1:HOTP-SHA1-6:QN08")
	if err != nil {
		t.Fatal(err)
	}
	got, err := plain.Compute(key20, Input{Question: "00000000", Counter: 5,
		PIN: []byte("x"), Time: time.Now()})
	if err != nil || got != "237653" {
		t.Errorf("unnamed inputs changed the answer: %s, %v", got, err)
	}
}

func TestDigits(t *testing.T) {
	for d := minDigits; d <= maxDigits; d++ {
		suite := "OCRA-1:HOTP-SHA1-" + string(rune('0'+d%10)) + ":QN08"
		if d == 10 {
			suite = "OCRA-1:HOTP-SHA1-10:QN08"
		}
		t.Run(suite, func(t *testing.T) {
			s, err := ParseSuite(suite)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Compute(key20, Input{Question: "00000000"})
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9]+$`).MatchString(got) || len(got) != d {
				t.Errorf("got %q, want %d digits", got, d)
			}
		})
	}
}

func TestNewChallenge(t *testing.T) {
	tests := []struct {
		name  string
		suite string
		re    string
	}{
		{"default", DefaultSuite, `^[0-9]{12}$`},
		{"hex", "OCRA-1:HOTP-SHA1-6:QH40", `^[0-9A-F]{40}$`},
		{"alphanumeric", "OCRA-1:HOTP-SHA1-6:QA64", `^[A-Za-z0-9]{64}$`},
		{"short numeric", "OCRA-1:HOTP-SHA1-6:QN04", `^[0-9]{4}$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSuite(tt.suite)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 200 {
				ch, err := NewChallenge(s)
				if err != nil {
					t.Fatal(err)
				}
				if !regexp.MustCompile(tt.re).MatchString(ch) {
					t.Fatalf("challenge %q does not match %s", ch, tt.re)
				}
				if _, err := s.Compute(key20, Input{Question: ch}); err != nil {
					t.Fatalf("Compute(%q): %v", ch, err)
				}
				seen[ch] = true
			}
			// Repeats among 200 draws would mean a broken random source (10^4 values
			// for the shortest suite make a few repeats possible there).
			if len(seen) < 150 {
				t.Errorf("only %d distinct challenges in 200", len(seen))
			}
		})
	}
	if _, err := NewChallenge(Suite{}); err == nil {
		t.Error("NewChallenge accepted the zero suite")
	}
}

func TestFormatChallenge(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"twelve", "482199301174", "4821 9930 1174"},
		{"eight", "12345678", "1234 5678"},
		{"ragged", "1234567890", "1234 5678 90"},
		{"short", "123", "123"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatChallenge(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerifyCode(t *testing.T) {
	a := Device{ID: "a", Suite: "OCRA-1:HOTP-SHA1-6:QN08", Key: key20}
	b := Device{ID: "b", Suite: "OCRA-1:HOTP-SHA256-8:QN08", Key: key32}
	broken := Device{ID: "broken", Suite: "nonsense", Key: key20}
	needsPIN := Device{ID: "pin", Suite: "OCRA-1:HOTP-SHA1-6:QN08-PSHA1", Key: key20}
	codeB := answer(t, b, "00000000")
	tests := []struct {
		name   string
		devs   []Device
		ch     string
		code   string
		wantID string
		ok     bool
	}{
		{"first device", []Device{a, b}, "00000000", "237653", "a", true},
		{"second device", []Device{a, b}, "00000000", codeB, "b", true},
		{"typed with spaces", []Device{a}, "0000 0000", " 237 653 ", "a", true},
		{"wrong code", []Device{a, b}, "00000000", "237654", "", false},
		{"right code, other challenge", []Device{a}, "11111111", "237653", "", false},
		{"code with extra digit", []Device{a}, "00000000", "2376530", "", false},
		{"empty code", []Device{a}, "00000000", "", "", false},
		{"empty challenge", []Device{a}, "", "237653", "", false},
		{"no devices", nil, "00000000", "237653", "", false},
		{"broken device skipped", []Device{broken, a}, "00000000", "237653", "a", true},
		{"device needing a PIN skipped", []Device{needsPIN}, "00000000", "237653", "", false},
		{"keyless device skipped", []Device{{ID: "k", Suite: a.Suite}}, "00000000", "237653",
			"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := VerifyCode(tt.devs, tt.ch, tt.code)
			if id != tt.wantID || ok != tt.ok {
				t.Errorf("VerifyCode = %q, %v; want %q, %v", id, ok, tt.wantID, tt.ok)
			}
		})
	}
}

func TestDeviceStringHidesKey(t *testing.T) {
	d := Device{ID: "a", Suite: DefaultSuite, Key: []byte("SECRETSECRETSECRET")}
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v", d, d, d),
		fmt.Sprint([]Device{d})} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "83, 69") {
			t.Errorf("key printed: %s", s)
		}
	}
}
