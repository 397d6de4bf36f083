package smolvm

import (
	"strings"
	"testing"
)

// BenchmarkTailBuffer is the cost of capturing a loud step: throughput and,
// with -benchmem, that memory stays O(limit) however much is written.
func BenchmarkTailBuffer(b *testing.B) {
	chunk := []byte(strings.Repeat("x", 32<<10))
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	buf := newTailBuffer(DefaultOutputLimit)
	for b.Loop() {
		_, _ = buf.Write(chunk)
	}
	if len(buf.Tail()) > DefaultOutputLimit {
		b.Fatalf("tail grew to %d bytes", len(buf.Tail()))
	}
}

// BenchmarkQuoteScript is the cost of quoting a 64 KiB provisioning script
// for `runuser -c`.
func BenchmarkQuoteScript(b *testing.B) {
	script := strings.Repeat("echo 'it''s' \"$HOME\" && ls -la /tmp\n", 64<<10/40)
	b.SetBytes(int64(len(script)))
	b.ReportAllocs()
	for b.Loop() {
		_ = quote(script)
	}
}
