package config

import (
	"strings"
	"testing"
)

// FuzzParse: any bytes give either a valid config or an *Error, never a panic; a valid
// config keeps its invariants.
func FuzzParse(f *testing.F) {
	f.Add("fail_mode = permissive\nconnect_timeout = 1.5\n")
	f.Add("offline_devices_path = /x/${username}\nmax_prompts = 10\n# c\n")
	f.Add("auth_timeout = 1e300\nverbose = maybe\n=\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, _, err := Parse("f.conf", strings.NewReader(text))
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if cfg.ConnectTimeout >= cfg.AuthTimeout || cfg.MaxPrompts < 1 ||
			!strings.Contains(cfg.OfflineDevicesPath, "${username}") {
			t.Fatalf("invalid config accepted: %+v", cfg)
		}
	})
}

// FuzzParseProperties: never a panic, and a diagnostic never echoes the signing key.
func FuzzParseProperties(f *testing.F) {
	f.Add("use_base64_key=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=\ntoken=t\n" +
		"idp_url=https://i.example.com\norg_alias=o\n")
	f.Add("a\\\nb=c\\u0041\n!x\n:=\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, diags, err := ParseProperties("p", strings.NewReader(text))
		if err == nil && (p == nil || len(p.Key) < 16 || p.Token == "" || p.IDPURL == "") {
			t.Fatalf("incomplete properties accepted: %v", p)
		}
		if p != nil && len(p.Key) > 0 {
			for _, d := range diags {
				if strings.Contains(d.Msg, string(p.Key)) {
					t.Fatalf("diagnostic echoes the key: %s", d)
				}
			}
		}
	})
}
