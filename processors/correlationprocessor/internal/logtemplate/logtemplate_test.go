package logtemplate

import (
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{"payment declined for order 123456 user=u-991", "payment declined for order <*> user=<*>"},
		{"connected to 10.0.0.12:5432 in 35ms", "connected to <*> in <*>"},
		{`lookup "alice" failed: not found`, "lookup <*> failed: not found"},
		{"request 3fa85f64-5717-4562-b3fc-2c963f66afa6 done", "request <*> done"},
		{"trace deadbeefcafebabe sampled", "trace <*> sampled"},
		{"cache added face", "cache added face"},
		{"unterminated 'quote here", "unterminated 'quote here"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Of(tt.line); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestSameTemplateForLinesOfOneKind(t *testing.T) {
	a := Of("user 17 logged in from 192.168.1.4")
	b := Of("user 9000 logged in from 10.1.1.1")
	if a != b {
		t.Errorf("templates differ: %q vs %q", a, b)
	}
}

func TestLengthBounded(t *testing.T) {
	if got := Of(strings.Repeat("word ", 200)); len(got) > MaxLen {
		t.Errorf("template of %d bytes, bound %d", len(got), MaxLen)
	}
}

func BenchmarkAppend(b *testing.B) {
	line := "payment declined for order 123456 user=u-991 after 3 retries in 35ms"
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = Append(buf[:0], line)
	}
}
