// Package archtest holds the tests that keep ecogrid's architectural rules
// true as the code grows: each bounded context owns its schema and no other
// package's SQL names it (see README, "How it holds together"). It has no
// code of its own.
package archtest
