// Package policy embeds the shipped fail-mode policy so the binary carries it.
package policy

import _ "embed"

// FailMode is the source of failmode.rego, package pingid.failmode.
//
//go:embed failmode.rego
var FailMode string

// FailModeFile is the name FailMode is compiled under, so errors and coverage point at it.
const FailModeFile = "policy/failmode.rego"

// Query is the rule every decision comes from.
const Query = "data.pingid.failmode.decision"

// OverridesPackage is the one package that override files may declare.
const OverridesPackage = "pingid.overrides"
