package controllers

import "strings"

// toValidUTF8 replaces invalid bytes: a step may print binary, and the API
// server rejects strings that are not UTF-8.
func toValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
