package entity

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestCompareEdgeKeys checks that Sort's comparison orders edges as their
// Key strings do, with ids made of the separators' own characters so that
// comparing the parts one by one would differ.
func TestCompareEdgeKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("a-!>#b")
	word := func() string {
		var b strings.Builder
		for range rng.IntN(5) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	types := []EdgeType{EdgeHTTP, EdgeGRPC, EdgeDB, ""}
	for i := 0; i < 100000; i++ {
		e := Edge{Source: word(), Target: word(), Type: types[rng.IntN(len(types))]}
		f := Edge{Source: word(), Target: word(), Type: types[rng.IntN(len(types))]}
		if i%7 == 0 {
			f = e
		}
		if got, want := compareEdgeKeys(&e, &f), strings.Compare(e.Key(), f.Key()); got != want {
			t.Fatalf("compareEdgeKeys(%q, %q) = %d, want %d", e.Key(), f.Key(), got, want)
		}
	}
}

func TestAppendIDIsID(t *testing.T) {
	for _, parts := range [][]string{{"shop", "checkout"}, {"", "checkout"}, {"a"}, {}, {"x", "", "z"}} {
		if got, want := string(AppendID([]byte("junk"), Service, parts...)), "junk"+ID(Service, parts...); got != want {
			t.Fatalf("AppendID(%q) = %q, want %q", parts, got, want)
		}
	}
}
