package main

import (
	"testing"

	"github.com/pingid-ssh/pingid-ssh/config"
)

func TestReloadRelevance(t *testing.T) {
	cfg := config.Default()
	cfg.PropertiesFile = "/etc/pingid/pingid.properties"
	cfg.PolicyDir = "/etc/pingid/policy.d"
	cfg.CAFile = "/etc/pingid/api-ca.pem"
	rel := relevant("/etc/pingid/pingid.conf", &cfg)
	tests := []struct {
		name, path string
		want       bool
	}{
		{"config", "/etc/pingid/pingid.conf", true},
		{"api CA", "/etc/pingid/api-ca.pem", true},
		{"properties", "/etc/pingid/pingid.properties", true},
		{"override", "/etc/pingid/policy.d/wheel.rego", true},
		{"override test", "/etc/pingid/policy.d/wheel_test.rego", true},
		{"policy dir itself", "/etc/pingid/policy.d", true},
		{"symlink swap", "/etc/pingid/..data", true},
		{"symlink swap target", "/etc/pingid/..2026_12_04", true},
		{"log beside the config", "/etc/pingid/daemon.log", false},
		{"editor backup", "/etc/pingid/pingid.conf~", false},
		{"text in policy dir", "/etc/pingid/policy.d/README", false},
		{"rego elsewhere", "/etc/pingid/other.rego", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rel(tc.path); got != tc.want {
				t.Fatalf("relevant(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}
