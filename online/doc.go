// Package online is the PingID API client of pingid-ssh: signed requests, the online login
// flow, reachability probes, and the classification of every failure into the classes the
// policy reads as input.online.class.
//
// Requests go to {idp_url}/rest/4/{operation}/do as compact JWS (HS256 under the
// base64-decoded use_base64_key, org_alias and token in the JOSE header, reqHeader with
// locale, orgAlias, secretKey, timestamp and version). Answers are believed only when they
// are signed with the same key and name our organisation (orgAlias, or the older
// org_alias); an unsigned body is always a failure, whatever it says.
//
// Every call has a total deadline of twice connect_timeout on top of connect, TLS
// handshake and response-header timeouts of connect_timeout each. A probe is bounded by
// connect_timeout in total. Retries happen only where repeating is safe (a refused
// connection for any call; a reset, 429, 502, 503 or 504 for the probe, authstatus and
// cancelauthentication) and only when the jittered wait, or the server's Retry-After,
// fits in the deadline. Timeouts are never retried, so a server that accepts and never
// answers costs connect_timeout, not the sum of the attempts.
//
// See README.md in this directory for the configuration keys and the classes.
package online
